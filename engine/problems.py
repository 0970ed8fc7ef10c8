"""Deploy refusals in a designer's words: a message code, its arguments, the finding in English
and Chinese, and what to do instead. SpiffWorkflow's and the XML Schema's own messages are
translated here, so a designer never has to read a parser's wording (or a traceback).
"""
from __future__ import annotations

import re
from collections.abc import Callable

from .errors import Problem

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
KNOWN_NS = {BPMN_NS: "bpmn", "http://www.omg.org/spec/BPMN/20100524/DI": "bpmndi",
            "http://www.omg.org/spec/DD/20100524/DC": "dc", "http://www.omg.org/spec/DD/20100524/DI": "di",
            "http://spiffworkflow.org/bpmn/schema/1.0/core": "spiffworkflow",
            "http://camunda.org/schema/1.0/bpmn": "camunda", "http://camunda.org/schema/zeebe/1.0": "zeebe"}
README = "workflows/README.md"

# code -> (English, Chinese, what to do (en), what to do (zh)); {placeholders} come from the args.
CATALOGUE: dict[str, tuple[str, str, str, str]] = {
    "xml_schema": (
        "XML Schema: {detail}", "不符合 BPMN 2.0 规范（XML Schema）：{detail}",
        "Fix the element in the modeler (or undo the hand edit); the file must be valid BPMN 2.0.",
        "在建模工具中修正该元素（或撤销手工修改），文件必须是合法的 BPMN 2.0。"),
    "vendor_element_misplaced": (
        "XML Schema: element {tag} from another tool ({ns}) sits outside bpmn:extensionElements",
        "另一款工具的扩展元素 {tag}（{ns}）不在 bpmn:extensionElements 内，BPMN 规范不允许",
        "Remove it, or let that tool put it inside <bpmn:extensionElements> (Gridflow ignores extension elements it does not know).",
        "删除该元素，或放入 <bpmn:extensionElements>（Gridflow 会忽略不认识的扩展元素）。"),
    "no_executable_process": (
        "no executable process in this file: nothing would be deployed from it",
        "此文件中没有可执行流程（isExecutable=\"true\"），部署后什么也不会保存",
        "Tick \"Executable\" on the process (isExecutable=\"true\") in the modeler, or leave this file out of the bundle.",
        "在建模工具中勾选流程的“可执行”（isExecutable=\"true\"），或不要把此文件放进部署包。"),
    "no_start_event": (
        "process has no start event", "流程没有开始事件",
        "Add one plain start event (a circle) where the process begins.", "在流程开始处添加一个空白开始事件（圆圈）。"),
    "subprocess_start_events": (
        "Exactly one start event is required in a sub-process; found {count}",
        "子流程必须恰好有一个开始事件，现在有 {count} 个",
        "Keep one start event inside the sub-process and connect the others' paths to it.",
        "子流程内只保留一个开始事件，把其他开始事件的后续路径接到它上面。"),
    "data_store": (
        "Data Store with name {store} has no implementation: Gridflow does not read or write data stores",
        "数据存储“{store}”没有实现：Gridflow 不读写数据存储",
        "Delete the data store (and its associations); keep the data in process variables set by a script task.",
        "删除数据存储（及其关联），改用脚本任务设置流程变量来保存数据。"),
    "service_task": (
        "A Service Task must have an operator: Gridflow has no services to call",
        "服务任务必须有执行者：Gridflow 没有可调用的外部服务",
        "Use a script task (Python, helpers emit/workdays/now) or a user task instead of the service task.",
        "把服务任务改为脚本任务（Python，可用 emit/workdays/now）或用户任务。"),
    "unsupported_element": (
        "{kind} is not supported by the engine", "引擎不支持{kind_zh}",
        "Model it with supported elements: exclusive/parallel/inclusive gateways, user, script and business-rule tasks, sub-processes, call activities, timer and message events.",
        "改用支持的元素：排他/并行/包容网关，用户任务、脚本任务、业务规则任务，子流程，调用活动，定时和消息事件。"),
    "missing_ref": (
        "{attr} points to {ref!r}, which no element in this file has",
        "{attr} 指向“{ref}”，但文件中没有这个 id 的元素",
        "Reconnect the {what} to an existing element in the modeler (or delete it).",
        "在建模工具中把该{what_zh}重新连接到存在的元素上（或删除它）。"),
    "missing_id": (
        "{tag} has no id", "{tag} 没有 id",
        "Give every element an id (modelers do this when you draw it; hand-written XML must too).",
        "每个元素都要有 id（建模工具绘制时会自动生成，手写 XML 也必须写上）。"),
    "timer_spec": (
        "timer has no time: Unknown Time Specification", "定时事件没有设置时间",
        "Set a Date (timeDate) expression, e.g. warn_at or \"PT1H\" in quotes, or apply the \"SLA timer\" template.",
        "设置定时日期（timeDate）表达式，例如 warn_at，或带引号的 \"PT1H\"，或套用“SLA timer”模板。"),
    "call_no_element": (
        "No \"calledElement\" attribute for Call Activity: it calls nothing",
        "调用活动没有 calledElement：不知道要调用哪个流程",
        "Set \"Called element\" to the id of a process in the bundle (e.g. handle_level).",
        "把“被调用元素”设为部署包中某个流程的 id（例如 handle_level）。"),
    "event_ref_missing": (
        "{kind} event refers to no {kind} definition ({ref!r})", "{kind_zh}事件引用的{kind_zh}定义不存在（{ref}）",
        "Choose or create the {kind} in the modeler's properties panel (a global {kind} with a name).",
        "在建模工具属性面板中选择或新建{kind_zh}（带名称的全局{kind_zh}）。"),
    "decision_missing": (
        "business rule task names no DMN decision", "业务规则任务没有指定 DMN 决策",
        "Set spiffworkflow:calledDecisionId (or camunda:decisionRef) to the id of a decision in a .dmn file of the bundle.",
        "把 spiffworkflow:calledDecisionId（或 camunda:decisionRef）设为部署包中 .dmn 文件里决策的 id。"),
    "data_association": (
        "Cannot resolve a data association: {detail}", "数据关联无法解析：{detail}",
        "Delete the data object/input association, or connect it to an existing data object.",
        "删除该数据对象/输入关联，或连接到存在的数据对象。"),
    "duplicate_process": (
        "Duplicate process ID: {pid}", "流程 id 重复：{pid}",
        "Give each process its own id; two files (or pools) may not define the same process.",
        "每个流程使用不同的 id；两个文件（或泳池）不能定义同一个流程。"),
    "property_conflict": (
        "property {key!r} is set twice with different values ({a!r} and {b!r})",
        "属性“{key}”被设置了两次且值不同（{a} 与 {b}）",
        "Keep one: delete it from either the Extension properties or the spiffworkflow properties.",
        "只保留一个：从“扩展属性”或 spiffworkflow 属性中删掉其中之一。"),
    "form_key": (
        "camunda:formKey {value!r} is not a Gridflow form (a JSON Schema file in forms/)",
        "camunda:formKey“{value}”不是 Gridflow 表单（forms/ 下的 JSON Schema 文件）",
        "Set the form key (or the \"form\" extension property) to a file in forms/, e.g. mediate.json.",
        "把表单键（或扩展属性 form）设为 forms/ 下的文件名，例如 mediate.json。"),
    "candidate_groups": (
        "camunda:candidateGroups {value!r} is not one Gridflow role",
        "camunda:candidateGroups“{value}”不是单个 Gridflow 角色",
        "Name exactly one role (grid_worker, grid_head, mediator, dispatcher, supervisor) or set the roleExpression property.",
        "只写一个角色（grid_worker、grid_head、mediator、dispatcher、supervisor），或设置 roleExpression 属性。"),
    "form_missing": (
        "form file forms/{form} does not exist", "表单文件 forms/{form} 不存在",
        "Add forms/{form} to the bundle, or choose an existing form in the \"Gridflow user task\" template.",
        "把 forms/{form} 加入部署包，或在“Gridflow user task”模板中选择已有表单。"),
    "call_missing": (
        "call activity calls {called!r}, which no deployed file defines",
        "调用活动调用的流程“{called}”在部署包中不存在",
        "Deploy the file that defines process {called!r} together with this one, or fix \"Called element\".",
        "把定义流程“{called}”的文件一起部署，或修正“被调用元素”。"),
    "process_not_executable": (
        "Process {pid} is not executable, so it cannot be called or started",
        "流程 {pid} 不是可执行流程，无法启动或被调用",
        "Tick \"Executable\" on process {pid} (isExecutable=\"true\") in the modeler.",
        "在建模工具中勾选流程 {pid} 的“可执行”（isExecutable=\"true\"）。"),
    "parser": (
        "cannot use this element: {detail}", "引擎无法使用该元素：{detail}",
        f"Change the element as the rules in {README} describe, or model it with a simpler construct.",
        f"按 {README} 中的规则修改该元素，或改用更简单的建模方式。"),
}


def make(code: str, file: str, line: int | None = None, element: str | None = None,
         name: str | None = None, **args) -> Problem:
    """A coded Problem, its texts filled from the catalogue."""
    en, zh, hint_en, hint_zh = CATALOGUE[code]
    return Problem(file, en.format(**args), line, element, code=code, args=args, name=name,
                   zh=zh.format(**args), hint_en=hint_en.format(**args), hint_zh=hint_zh.format(**args))


def short_tag(tag: str) -> str:
    """`{ns}local` as `prefix:local` for the namespaces designers meet."""
    m = re.match(r"\{([^}]*)\}(.*)", tag or "")
    if not m:
        return tag
    return f"{KNOWN_NS.get(m.group(1), m.group(1))}:{m.group(2)}"


def from_xsd(file: str, message: str, line: int | None, element: str | None, name: str | None) -> Problem:
    """An XML Schema error: another tool's element outside extensionElements, or a BPMN violation."""
    m = re.match(r"Element '\{([^}]*)\}([^']*)': This element is not expected", message)
    if m and m.group(1) != BPMN_NS:
        return make("vendor_element_misplaced", file, line, element, name,
                    tag=m.group(2), ns=m.group(1))
    detail = re.sub(r"\{[^}]*\}[A-Za-z]+", lambda x: short_tag(x.group(0)), message)
    detail = re.sub(r" Expected is (one of )?\(.*\)\.?$", "", detail)
    return make("xml_schema", file, line, element, name, detail=detail.strip())


_TASK_KINDS = {"complexGateway": ("the complex gateway", "复杂网关"),
               "transaction": ("the transaction sub-process", "事务子流程"),
               "dataStoreReference": ("the data store", "数据存储")}


def _kind(tag: str | None) -> dict:
    en, zh = _TASK_KINDS.get(tag or "", (f"this element ({tag or 'its type'})", f"该元素（{tag or '此类型'}）"))
    return {"kind": en, "kind_zh": zh}


def from_spiff(message: str, file: str, line: int | None, element: str | None, name: str | None,
               tag: str | None = None) -> Problem:
    """Translate one SpiffWorkflow parser message into a coded Problem."""
    msg = message.strip().rstrip(".").strip()
    rules: list[tuple[str, str, Callable[[re.Match], dict]]] = [
        (r"Data Store with name (.*) has no implementation", "data_store", lambda m: {"store": m.group(1)}),
        (r"A Service Task must have an operator", "service_task", lambda m: {}),
        (r"Exactly one start event is required in a SubWorkflow Task; found (\d+)", "subprocess_start_events",
         lambda m: {"count": int(m.group(1))}),
        (r"No start event found", "no_start_event", lambda m: {}),
        (r"Unknown Time Specification", "timer_spec", lambda m: {}),
        (r"No \"calledElement\" attribute", "call_no_element", lambda m: {}),
        (r"No DMN Diagram available with id \"None\"", "decision_missing", lambda m: {}),
        (r"Cannot resolve data(?:In|Out)putAssociation", "data_association",
         lambda m: {"detail": "its source or target is missing"}),
        (r"Process (\S+) is not executable", "process_not_executable", lambda m: {"pid": m.group(1)}),
        (r"(Signal|Error|Escalation|Correlation) identifier is missing", "event_ref_missing",
         lambda m: {"kind": m.group(1).lower(), "ref": None,
                    "kind_zh": {"Signal": "信号", "Error": "错误", "Escalation": "升级"}.get(m.group(1), "关联")}),
        (r"Duplicate process ID: (\S+)", "duplicate_process", lambda m: {"pid": m.group(1)}),
        (r"There is no support implemented for this task type", "unsupported_element",
         lambda m: _kind(tag)),
    ]
    for pattern, code, args in rules:
        m = re.search(pattern, msg)
        if m:
            return make(code, file, line, element, name, **args(m))
    return make("parser", file, line, element, name, detail=msg)
