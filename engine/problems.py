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


# ---- refusals other modules word in English only: coded here, so deploy keeps its own wording --------
CATALOGUE.update({
    "script_refused": (
        "{label}: refused by the sandbox: {detail}", "{label_zh}被脚本沙箱拒绝：{detail_zh}",
        "{hint_en}", "{hint_zh}"),
    "expression_refused": (
        "{label} {expr!r}: refused by the sandbox: {detail}", "{label_zh} {expr} 被脚本沙箱拒绝：{detail_zh}",
        "{hint_en}", "{hint_zh}"),
    "timer_empty": (
        "timer has no expression", "定时事件没有时间表达式",
        "Set the timer's Date (timeDate) to a variable such as warn_at, or a quoted literal such as \"PT1H\".",
        "把定时日期（timeDate）设为变量（如 warn_at）或带引号的字面量（如 \"PT1H\"）。"),
    "timer_unquoted": (
        "timer expression {expr} is not quoted: write \"{expr}\" (it is evaluated as Python)",
        "定时表达式 {expr} 没有加引号：应写成 \"{expr}\"（表达式按 Python 求值）",
        "Put the literal in double quotes: \"{expr}\"; or use a variable computed before the activity (warn_at, due_at).",
        "给字面量加上双引号：\"{expr}\"；或使用活动之前计算好的变量（warn_at、due_at）。"),
    "timer_not_iso": (
        "timer expression {expr} does not evaluate to an ISO 8601 time: {detail}",
        "定时表达式 {expr} 的值不是 ISO 8601 时间：{detail}",
        "Write an ISO 8601 duration (\"PT1H\", \"P3D\"), date-time (\"2026-03-02T09:00:00+08:00\") or cycle (\"R3/PT1H\").",
        "写成 ISO 8601 时长（\"PT1H\"、\"P3D\"）、日期时间（\"2026-03-02T09:00:00+08:00\"）或循环（\"R3/PT1H\"）。"),
    "form_json": (
        "invalid JSON: {detail}", "表单不是合法的 JSON：{detail}",
        "Fix the JSON syntax at that line (a missing comma or quote, a trailing comma); an editor with JSON checking shows it.",
        "修正该行的 JSON 语法（缺逗号或引号、多余的结尾逗号）；支持 JSON 检查的编辑器会标出位置。"),
    "form_schema": (
        "invalid JSON Schema: {detail}", "表单不是合法的 JSON Schema：{detail}",
        "Forms are JSON Schema draft 2020-12: check the keyword named here (type, properties, required ...).",
        "表单必须是 JSON Schema（draft 2020-12）：检查这里提到的关键字（type、properties、required 等）。"),
    "xml_doctype": (
        "DOCTYPE and entity declarations are not allowed", "不允许 DOCTYPE 和实体声明",
        "Delete the <!DOCTYPE ...> / <!ENTITY ...> lines: BPMN and DMN files never need them.",
        "删除 <!DOCTYPE ...> / <!ENTITY ...> 行：BPMN 和 DMN 文件不需要它们。"),
    "xml_entity": (
        "entity references are not allowed", "不允许实体引用",
        "Write the text itself instead of &name; (only the XML built-ins such as &amp; and &lt; are allowed).",
        "直接写出文字，不要用 &name;（只允许 &amp;、&lt; 等 XML 内置实体）。"),
    "xml_malformed": (
        "not well-formed XML: {detail}", "不是格式正确的 XML：{detail}",
        "Open and save the file in the modeler again, or fix the tag at that line (unclosed element, stray character).",
        "在建模工具中重新打开并保存文件，或修正该行的标签（未闭合的元素、多余字符）。"),
    "no_bpmn": (
        "no BPMN files found", "没有找到 BPMN 文件",
        "Point the command at a .bpmn file or a folder holding .bpmn files (default: ./workflows).",
        "请指定一个 .bpmn 文件或包含 .bpmn 文件的文件夹（默认 ./workflows）。"),
})

_LABELS_ZH = {"script": "脚本", "preScript": "前置脚本", "postScript": "后置脚本", "condition": "条件表达式",
              "timer expression": "定时表达式", "'unit' property": "unit 属性",
              "'user' property": "user 属性", "'roleExpression' property": "roleExpression 属性"}
_SANDBOX_HINT = ("Scripts and conditions are short Python without imports or names starting with an underscore; "
                 "use the helpers workdays(n), emit(kind, **data), now() (see " + README + ").",
                 "脚本和条件是简短的 Python：不能 import、不能用下划线开头的名字；可用 workdays(n)、"
                 "emit(kind, **data)、now()（见 " + README + "）。")
# sandbox wording (engine/sandbox*.py, RestrictedPython) -> (zh with {placeholders}, hint en, hint zh)
SANDBOX_REASONS: list[tuple[str, str, str, str]] = [
    (r"syntax error: (?P<msg>.*) \(line (?P<line>\d+)\)", "语法错误：{msg}（第 {line} 行）",
     "Fix the Python syntax at that line of the script (brackets, quotes, a colon, indentation).",
     "修正脚本该行的 Python 语法（括号、引号、冒号、缩进）。"),
    (r"import is not allowed", "不允许 import",
     "Remove the import: use the helpers workdays(n), emit(kind, **data), now() and plain Python.",
     "删除 import：使用 workdays(n)、emit(kind, **data)、now() 和普通 Python。"),
    (r"the code is nested too deeply", "代码嵌套过深",
     "Flatten the expression: compute parts in separate lines of a script task.",
     "拆开表达式：在脚本任务中分几行计算。"),
    (r"the code is too long \((?P<n>\d+) syntax nodes, at most (?P<max>\d+)\)",
     "代码过长（{n} 个语法节点，最多 {max} 个）",
     "Split the script over several script tasks, or move a big table into a DMN decision.",
     "把脚本拆成几个脚本任务，或把大表格改为 DMN 决策。"),
    (r'"(?P<name>_\w*)" is an invalid (variable|attribute) name because it starts with "_"',
     "“{name}”以下划线开头，不允许使用",
     "Rename it without the leading underscore (names starting with _ are reserved by the sandbox).",
     "去掉开头的下划线重新命名（下划线开头的名字由沙箱保留）。"),
    (r"While statements are not allowed", "不允许 while 循环",
     "Use a for loop over a bounded list or range(n) instead of while.", "改用对有限列表或 range(n) 的 for 循环。"),
    (r"(?P<what>.+) statements are not allowed", "不允许 {what} 语句",
     "Remove the statement; scripts only assign variables, call helpers and use if/for.",
     "删除该语句；脚本只用于给变量赋值、调用辅助函数以及 if/for。"),
]


def _sandbox_args(detail: str) -> dict:
    """zh text and hint for one sandbox reason (the generic hint when the wording is unknown)."""
    parts = [d.strip() for d in detail.split(";") if d.strip()] or [detail]
    zh, hint = [], None
    for part in parts:
        core = re.sub(r"^Line \d+: ", "", part).rstrip(".")
        for pattern, text_zh, h_en, h_zh in SANDBOX_REASONS:
            m = re.search(pattern, core)
            if m:
                zh.append(text_zh.format(**m.groupdict()))
                hint = hint or (h_en, h_zh)
                break
        else:
            zh.append(core)
    hint = hint or _SANDBOX_HINT
    return {"detail": detail, "detail_zh": "；".join(zh), "hint_en": hint[0], "hint_zh": hint[1]}


# the English-only wording of engine/deploy.py, engine/xmlsafe.py and the sandbox -> a code and its args
_PLAIN: list[tuple[str, str, Callable[[re.Match], dict]]] = [
    (r"^(?P<label>script|preScript|postScript): refused by the sandbox: (?P<detail>.*)$", "script_refused",
     lambda m: {"label": m["label"], "label_zh": _LABELS_ZH[m["label"]], **_sandbox_args(m["detail"])}),
    (r"^timer expression (?P<expr>.+) is not quoted: write ", "timer_unquoted", lambda m: {"expr": m["expr"]}),
    (r"^timer expression (?P<expr>.+) does not evaluate to an ISO 8601 time: (?P<detail>.*)$", "timer_not_iso",
     lambda m: {"expr": m["expr"], "detail": m["detail"]}),
    (r"^(?P<label>condition|timer expression|'(?:unit|user|roleExpression)' property) (?P<expr>'.*'|\".*\"): "
     r"refused by the sandbox: (?P<detail>.*)$", "expression_refused",
     lambda m: {"label": m["label"], "label_zh": _LABELS_ZH[m["label"]], "expr": _unrepr(m["expr"]),
                **_sandbox_args(m["detail"])}),
    (r"^timer has no expression$", "timer_empty", lambda m: {}),
    (r"^invalid JSON: (?P<detail>.*)$", "form_json", lambda m: {"detail": m["detail"]}),
    (r"^invalid JSON Schema: (?P<detail>.*)$", "form_schema", lambda m: {"detail": m["detail"]}),
    (r"^DOCTYPE and entity declarations are not allowed$", "xml_doctype", lambda m: {}),
    (r"^entity references are not allowed$", "xml_entity", lambda m: {}),
    (r"^not well-formed XML: (?P<detail>.*)$", "xml_malformed", lambda m: {"detail": m["detail"]}),
    (r"^no BPMN files found$", "no_bpmn", lambda m: {}),
]


def _unrepr(text: str) -> str:
    import ast

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def coded(p: Problem, names: dict[str, str] | None = None) -> Problem:
    """`p` with a code, Chinese text and a hint when its English wording is known; else `p` itself.
    deploy.parse_bundle should pass every problem through this before raising DeployError."""
    if p.code:
        return p
    for pattern, code, args in _PLAIN:
        m = re.search(pattern, p.en or "")
        if m:
            name = p.name or (names or {}).get(p.element or "")
            return make(code, p.file, p.line, p.element, name, **args(m))
    return p


def coded_all(problems: list[Problem], names: dict[str, str] | None = None) -> list[Problem]:
    """Every problem through `coded` (order kept)."""
    return [coded(p, names) for p in problems]


# ---- the fast path of `gridflow validate`: XML and XML Schema findings before SpiffWorkflow loads -----
_schema = None


def _bpmn_schema():
    """The XML Schema deploy validates against (SpiffWorkflow's BPMN XSDs plus its extension schema),
    read from SpiffWorkflow's package folder without importing SpiffWorkflow (a second or so)."""
    global _schema
    if _schema is None:
        import importlib.util
        import os

        from lxml import etree

        spec = importlib.util.find_spec("SpiffWorkflow")
        base = list(spec.submodule_search_locations)[0]
        doc = etree.parse(os.path.join(base, "bpmn", "parser", "schema", "BPMN20.xsd"))
        doc.getroot().insert(0, etree.Element("{http://www.w3.org/2001/XMLSchema}import",
                                              namespace="http://spiffworkflow.org/bpmn/schema/1.0/core",
                                              schemaLocation=os.path.join(base, "spiff", "parser", "schema",
                                                                          "spiffworkflow.xsd")))
        _schema = etree.XMLSchema(doc)
    return _schema


def precheck(bpmn: dict[str, bytes], dmn: dict[str, bytes], forms: set[str]) -> list[Problem]:
    """What deploy's first two steps would refuse (unsafe or malformed XML, other modelers' misuse,
    the BPMN XML Schema), coded. Empty means: run the full validation."""
    from . import modeler_compat, xmlsafe

    problems: list[Problem] = []
    for name, content in list(bpmn.items()) + list(dmn.items()):
        try:
            root = xmlsafe.parse(content, name)
        except xmlsafe.XmlRefused as e:
            problems += coded_all(e.problems)
            continue
        if name not in bpmn:
            continue
        names = modeler_compat.names_of(root)
        problems += modeler_compat.normalise(root, name, forms)
        problems += modeler_compat.check_structure(root, name)
        schema = _bpmn_schema()
        if not schema.validate(root):
            for err in schema.error_log:
                el = element_at(root, err.line)
                problems.append(from_xsd(name, err.message, err.line, el, names.get(el)))
    if not bpmn:
        problems.append(make("no_bpmn", "(bundle)"))
    return problems


def element_at(root, line: int | None) -> str | None:
    """The id of the last element with an id that starts at or before `line` (as deploy locates)."""
    best = None
    for el in root.iter():
        if not isinstance(el.tag, str) or el.sourceline is None or line is None:
            continue
        if el.sourceline <= line and el.get("id"):
            best = el.get("id")
        if el.sourceline > line:
            break
    return best
