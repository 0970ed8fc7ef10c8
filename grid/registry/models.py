"""Grid registry tables: buildings, households, residents, their life events, special-population
flags, the audit of revealed ID numbers and phones, and import batches.

History is kept: a resident is never deleted; every change goes through `grid.registry` and is
recorded as a `ResidentEvent` with who, when and the values before and after. The head of a
household is the living member whose `relation` is 'head'.

ID numbers and phones are stored sealed (`grid.crypto`: AES-GCM, key id with the value); the
attributes hold the plaintext. Exact lookups go through the blind indexes `id_index` and
`phone_index`, which the model keeps in step whenever `id_number` or `phone` is set (bulk Core
inserts set them with `person_index`); `id_tail` (the last 4 characters, which every mask shows
anyway) serves the "last 4 of the ID number" search.

`Resident.grid_code` repeats the grid of the resident's building so that "my grid" and
jurisdiction queries need no joins; `grid.registry` keeps it in step when a person moves.
"""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Boolean, Date, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, validates

from engine.db import Base, UTCDateTime
from grid import crypto

JSONType = JSON().with_variant(JSONB(), "postgresql")

STATUSES = {"living": "在住", "moved_out": "迁出", "deceased": "死亡"}
SEXES = {"M": "男", "F": "女"}
RELATIONS = {
    "head": "户主", "spouse": "配偶", "child": "子女", "parent": "父母", "grandchild": "孙子女",
    "grandparent": "祖父母", "sibling": "兄弟姐妹", "child_in_law": "儿媳/女婿", "other": "其他",
}
# GB/T 31000-style special populations (特殊人群) and service groups (关爱对象).
SPECIAL_CATEGORIES = {
    "community_correction": "社区矫正人员",
    "released": "刑满释放人员",
    "mental_disorder": "严重精神障碍患者",
    "drug_user": "吸毒人员",
    "key_youth": "重点青少年",
}
SERVICE_CATEGORIES = {
    "elderly_alone": "独居/空巢老人",
    "left_behind_child": "留守儿童",
    "disabled": "残疾人",
}
ID_CONTEXT = "resident.id_number"
PHONE_CONTEXT = "resident.phone"
CATEGORIES = {**SPECIAL_CATEGORIES, **SERVICE_CATEGORIES}
RISK_LEVELS = {"high": "高风险", "medium": "中风险", "low": "低风险"}
EVENT_KINDS = {
    "birth": "出生", "death": "死亡", "move_in": "迁入", "move_out": "迁出", "transfer": "迁往其他住户",
    "update": "信息更正", "head": "变更户主", "flag": "标记", "unflag": "撤销标记", "risk": "调整风险等级",
    "visit": "走访", "import": "导入",
}


class Building(Base):
    """A building (楼栋) or a rural compound; belongs to one grid."""

    __tablename__ = "building"
    id: Mapped[int] = mapped_column(primary_key=True)
    grid_code: Mapped[str] = mapped_column(ForeignKey("org_unit.code"), index=True)
    address: Mapped[str] = mapped_column(String(200), unique=True)  # the natural key for imports
    lat: Mapped[float | None] = mapped_column(Float)
    lng: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Household(Base):
    """A household (户) at a door of a building; its head is the member with relation 'head'."""

    __tablename__ = "household"
    __table_args__ = (UniqueConstraint("building_id", "door_no", name="uq_household_building_door"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("building.id"))
    door_no: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Resident(Base):
    """A person registered in a household. `household_id` stays on the last household after a
    move-out or death, so the history reads naturally."""

    __tablename__ = "resident"
    __table_args__ = (
        Index("ix_resident_grid_status", "grid_code", "status"),
        Index("ix_resident_household", "household_id", "status"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"))
    grid_code: Mapped[str] = mapped_column(ForeignKey("org_unit.code"))
    name: Mapped[str] = mapped_column(String(50), index=True)
    id_number: Mapped[str | None] = mapped_column(crypto.Sealed(ID_CONTEXT))  # 公民身份号码; none yet for a newborn
    id_index: Mapped[str | None] = mapped_column(String(crypto.INDEX_LENGTH), unique=True)
    id_tail: Mapped[str | None] = mapped_column(String(4))
    phone: Mapped[str | None] = mapped_column(crypto.Sealed(PHONE_CONTEXT))
    phone_index: Mapped[str | None] = mapped_column(String(crypto.INDEX_LENGTH), index=True)
    birth_date: Mapped[date | None] = mapped_column(Date)
    sex: Mapped[str | None] = mapped_column(String(1))  # M | F
    relation: Mapped[str] = mapped_column(String(20))  # see RELATIONS
    status: Mapped[str] = mapped_column(String(10))  # living | moved_out | deceased
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_batch_id: Mapped[int | None] = mapped_column(ForeignKey("registry_import.id"))

    @validates("id_number", "phone")
    def _keep_index(self, key: str, value: str | None) -> str | None:
        for k, v in person_index(**{key: value}).items():
            setattr(self, k, v)
        return value


def id_blind(idn: str) -> str:
    """The blind index of an ID number (normalised: upper case, no spaces)."""
    return crypto.blind(idn.strip().upper(), ID_CONTEXT)


def phone_blind(phone: str) -> str:
    """The blind index of a phone number (as stored: stripped)."""
    return crypto.blind(phone.strip(), PHONE_CONTEXT)


_UNSET = object()


def person_index(id_number=_UNSET, phone=_UNSET) -> dict:
    """The index columns for the given ID number and/or phone (for Core inserts and updates)."""
    out: dict = {}
    if id_number is not _UNSET:
        out["id_index"] = id_blind(id_number) if id_number else None
        out["id_tail"] = id_number.strip().upper()[-4:] if id_number else None
    if phone is not _UNSET:
        out["phone_index"] = phone_blind(phone) if phone else None
    return out


class ResidentEvent(Base):
    """One recorded change: birth, death, move in/out, transfer, correction, flag, visit ...

    `at` is when it was recorded, `occurred_on` when it happened (a death may be reported days
    later); `before`/`after` hold the changed fields."""

    __tablename__ = "resident_event"
    __table_args__ = (Index("ix_resident_event_grid_at", "grid_code", "at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"), index=True)
    household_id: Mapped[int | None] = mapped_column(ForeignKey("household.id"))
    grid_code: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(20))  # see EVENT_KINDS
    occurred_on: Mapped[date | None] = mapped_column(Date)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str | None] = mapped_column(String(100))
    before: Mapped[dict] = mapped_column(JSONType, default=dict)
    after: Mapped[dict] = mapped_column(JSONType, default=dict)
    note: Mapped[str | None] = mapped_column(Text)


class SpecialFlag(Base):
    """A resident flagged as a special population or service group, with the visit schedule
    (a `special_visit` process instance) that the flag started."""

    __tablename__ = "special_flag"
    __table_args__ = (Index("ix_special_flag_grid_active", "grid_code", "active"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"), index=True)
    grid_code: Mapped[str] = mapped_column(String(20))
    category: Mapped[str] = mapped_column(String(30))  # see CATEGORIES
    risk_level: Mapped[str] = mapped_column(String(10))  # see RISK_LEVELS
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("instance.id"), index=True)
    note: Mapped[str | None] = mapped_column(Text)
    flagged_at: Mapped[datetime] = mapped_column(UTCDateTime)
    flagged_by: Mapped[str | None] = mapped_column(String(100))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_by: Mapped[str | None] = mapped_column(String(100))
    end_reason: Mapped[str | None] = mapped_column(String(200))
    visits: Mapped[int] = mapped_column(Integer, default=0)
    last_visit_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    overdue_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    overdue_count: Mapped[int] = mapped_column(Integer, default=0)


class RevealLog(Base):
    """Every attempt to see an unmasked ID number or phone, granted or refused."""

    __tablename__ = "registry_reveal"
    __table_args__ = (Index("ix_registry_reveal_staff_at", "staff_id", "at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[str] = mapped_column(ForeignKey("staff.id"))
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"), index=True)
    field: Mapped[str] = mapped_column(String(20))  # id_number | phone
    granted: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class ImportBatch(Base):
    """One import run (a file), with what it did; residents created by it point back here."""

    __tablename__ = "registry_import"
    id: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    format: Mapped[str] = mapped_column(String(10))  # csv | xlsx
    actor: Mapped[str | None] = mapped_column(String(100))
    grid_code: Mapped[str | None] = mapped_column(String(20))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20))  # done | rejected
    rows: Mapped[int] = mapped_column(Integer, default=0)
    counts: Mapped[dict] = mapped_column(JSONType, default=dict)
    errors: Mapped[list] = mapped_column(JSONType, default=list)  # the first errors, if rejected
