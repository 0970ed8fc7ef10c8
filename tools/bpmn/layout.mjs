// Writes the diagram layout (BPMNDI) of workflows/*.bpmn from the grid in layouts.mjs.
//
//   node tools/bpmn/layout.mjs             # rewrite the BPMNDI of every file in layouts.mjs
//   node tools/bpmn/layout.mjs --check     # exit 1 if a file's BPMNDI is not what the grid gives
//   node tools/bpmn/layout.mjs FILE...     # only these files (names inside workflows/)
//   node tools/bpmn/layout.mjs --auto FILE # a file with no grid yet: bpmn-auto-layout draws it
//                                          # (sub-processes collapsed); add a grid for a better one
//
// Why not bpmn-auto-layout alone: it draws sub-processes collapsed (their content on a
// separate drill-down plane), so the case view could not highlight `dispatch` or `mediate`
// next to the SLA timers. This script draws the embedded sub-process expanded, with its
// content and boundary events on one plane. Only the <bpmndi:BPMNDiagram> block is
// replaced; the process XML above it is left byte for byte as written.
//
// It fails when a flow node has no grid position, so a designer who adds an element adds
// its position in layouts.mjs too (or lays the file out in Camunda Modeler and drops the
// file from layouts.mjs).
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BpmnModdle } from 'bpmn-moddle';
import { layoutProcess } from 'bpmn-auto-layout';
import layouts from './layouts.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const WORKFLOWS = path.resolve(here, '../../workflows');

const COL = 160; // grid column width
const ROW = 130; // grid row height
const MARGIN = 60;
const BOX_PAD = 30; // sub-process padding around its cells
const BOX_HEAD = 30; // extra room on top of a sub-process for its name
const SIZES = {
  event: [36, 36],
  gateway: [50, 50],
  activity: [100, 80],
};

function kind(el) {
  const t = el.$type;
  if (/Event$/.test(t)) return 'event';
  if (/Gateway$/.test(t)) return 'gateway';
  return 'activity';
}

// Rough text width in px for bpmn-js' 11px external labels (CJK is about square).
function textWidth(s) {
  let w = 0;
  for (const ch of s) w += ch.codePointAt(0) > 0x2e80 ? 12 : 6.5;
  return w;
}

function labelBox(name, cx, cy, where, shape) {
  const lines = Math.ceil(textWidth(name) / 90) || 1;
  const w = Math.min(90, Math.max(20, Math.ceil(textWidth(name))));
  const h = 14 * lines;
  const [sw, sh] = [shape.w, shape.h];
  switch (where) {
    case 'above': return { x: cx - w / 2, y: cy - sh / 2 - 6 - h, w, h };
    case 'left': return { x: cx - sw / 2 - 6 - w, y: cy - h / 2, w, h };
    case 'right': return { x: cx + sw / 2 + 6, y: cy - h / 2, w, h };
    case 'above-left': return { x: cx - sw / 2 - w + 8, y: cy - sh / 2 - h, w, h };
    case 'above-right': return { x: cx + sw / 2 - 8, y: cy - sh / 2 - h, w, h };
    case 'below-left': return { x: cx - sw / 2 - w + 8, y: cy + sh / 2, w, h };
    case 'below-right': return { x: cx + sw / 2 - 8, y: cy + sh / 2, w, h };
    default: return { x: cx - w / 2, y: cy + sh / 2 + 6, w, h };
  }
}

const r = (v) => Math.round(v);

function collect(container, out = []) {
  for (const el of container.flowElements || []) {
    out.push(el);
    if (el.flowElements) collect(el, out);
  }
  return out;
}

export async function layoutXml(xml, grid, fileName) {
  const moddle = new BpmnModdle();
  const { rootElement: defs, warnings } = await moddle.fromXML(xml);
  if (warnings.length) throw new Error(`${fileName}: ${warnings.map((w) => w.message).join('; ')}`);
  const processes = defs.rootElements.filter((e) => e.$type === 'bpmn:Process');
  if (processes.length !== 1) throw new Error(`${fileName}: expected one process`);
  const proc = processes[0];
  const elements = collect(proc);
  const nodes = elements.filter((e) => e.$type !== 'bpmn:SequenceFlow');
  const flows = elements.filter((e) => e.$type === 'bpmn:SequenceFlow');

  const missing = nodes.filter((n) => !grid.nodes[n.id]).map((n) => n.id);
  if (missing.length) throw new Error(`${fileName}: no grid position in layouts.mjs for ${missing.join(', ')}`);
  const unknown = Object.keys(grid.nodes).filter((id) => !nodes.some((n) => n.id === id));
  if (unknown.length) throw new Error(`${fileName}: layouts.mjs names unknown elements ${unknown.join(', ')}`);

  const cols = [];
  const rows = [];
  for (const hint of Object.values(grid.nodes)) {
    if (hint.at) { cols.push(hint.at[0]); rows.push(hint.at[1]); }
    if (hint.box) { cols.push(...hint.box.cols); rows.push(...hint.box.rows); }
  }
  const minCol = Math.min(...cols);
  const minRow = Math.min(...rows);
  const X = (c) => MARGIN + 50 + (c - minCol) * COL + 40;
  const Y = (row) => MARGIN + 40 + BOX_HEAD + BOX_PAD + (row - minRow) * ROW;

  // Shapes: plain nodes and boxes first, boundary events last (they sit on their host).
  const shapes = {};
  for (const n of nodes) {
    const hint = grid.nodes[n.id];
    if (hint.box) {
      const x = X(hint.box.cols[0]) - 50 - BOX_PAD;
      const y = Y(hint.box.rows[0]) - 40 - BOX_PAD - BOX_HEAD;
      const w = X(hint.box.cols[1]) + 50 + BOX_PAD - x;
      const h = Y(hint.box.rows[1]) + 40 + BOX_PAD - y;
      shapes[n.id] = { el: n, x, y, w, h, cx: x + w / 2, cy: y + h / 2, expanded: true };
    } else if (hint.at) {
      const [w, h] = SIZES[kind(n)];
      const cx = X(hint.at[0]);
      const cy = Y(hint.at[1]);
      shapes[n.id] = { el: n, x: cx - w / 2, y: cy - h / 2, w, h, cx, cy };
    }
  }
  for (const n of nodes) {
    const hint = grid.nodes[n.id];
    if (!hint.on) continue;
    const host = shapes[hint.on[0]];
    if (!host || n.attachedToRef?.id !== hint.on[0]) throw new Error(`${fileName}: ${n.id} is not attached to ${hint.on[0]}`);
    const [w, h] = SIZES.event;
    const cx = X(hint.on[1]);
    const cy = host.y + host.h;
    shapes[n.id] = { el: n, x: cx - w / 2, y: cy - h / 2, w, h, cx, cy, boundary: true };
  }
  for (const s of Object.values(shapes)) {
    const hint = grid.nodes[s.el.id];
    if (s.el.name && kind(s.el) !== 'activity') s.label = labelBox(s.el.name, s.cx, s.cy, hint.label, s);
  }

  const edges = flows.map((f) => {
    const s = shapes[f.sourceRef.id];
    const t = shapes[f.targetRef.id];
    const hint = (grid.flows || {})[f.id] || {};
    const pts = route(s, t, hint, Y);
    const edge = { el: f, pts };
    if (f.name) {
      const seg = Math.min(hint.labelSegment || 0, pts.length - 2);
      const [a, b] = [pts[seg], pts[seg + 1]];
      const w = Math.ceil(textWidth(f.name));
      if (a.x === b.x) {
        edge.label = { x: a.x + 6, y: (a.y + b.y) / 2 - 7, w, h: 14 };
      } else {
        edge.label = { x: (a.x + b.x) / 2 - w / 2, y: a.y - 19, w, h: 14 };
      }
    }
    return edge;
  });

  return render(xml, proc, shapes, edges);
}

function route(s, t, hint, channelY) {
  const right = (n) => n.x + n.w;
  const bottom = (n) => n.y + n.h;
  const within = (v, n) => v > n.y && v < bottom(n);
  if (hint.channel !== undefined) {
    const yc = channelY(hint.channel);
    const up = yc < s.cy;
    return [
      { x: s.cx, y: up ? s.y : bottom(s) },
      { x: s.cx, y: yc },
      { x: t.cx, y: yc },
      { x: t.cx, y: yc < t.cy ? t.y : bottom(t) },
    ];
  }
  const forward = t.cx >= s.cx;
  let type = hint.route;
  if (!type) {
    if (Math.abs(s.cy - t.cy) < 1 || (t.expanded && within(s.cy, t)) || (s.expanded && within(t.cy, s))) type = 'h';
    else if (Math.abs(s.cx - t.cx) < 1) type = 'v';
    else if (kind(s.el) === 'gateway' || s.boundary) type = 'vh';
    else type = 'hv';
  }
  if (type === 'h') {
    const y = s.expanded ? t.cy : s.cy;
    return [{ x: forward ? right(s) : s.x, y }, { x: forward ? t.x : right(t), y }];
  }
  if (type === 'v') {
    const down = t.cy > s.cy;
    return [{ x: s.cx, y: down ? bottom(s) : s.y }, { x: s.cx, y: down ? t.y : bottom(t) }];
  }
  if (type === 'vh') {
    const down = t.cy > s.cy;
    return [
      { x: s.cx, y: down ? bottom(s) : s.y },
      { x: s.cx, y: t.cy },
      { x: forward ? t.x : right(t), y: t.cy },
    ];
  }
  // 'hv'
  const down = t.cy > s.cy;
  return [
    { x: forward ? right(s) : s.x, y: s.cy },
    { x: t.cx, y: s.cy },
    { x: t.cx, y: down ? t.y : bottom(t) },
  ];
}

function bounds(b, indent) {
  return `${indent}<dc:Bounds x="${r(b.x)}" y="${r(b.y)}" width="${r(b.w)}" height="${r(b.h)}" />`;
}

function render(xml, proc, shapes, edges) {
  const out = [];
  out.push(`  <bpmndi:BPMNDiagram id="diagram_${proc.id}">`);
  out.push(`    <bpmndi:BPMNPlane id="plane_${proc.id}" bpmnElement="${proc.id}">`);
  // sub-processes first so bpmn-js draws their content on top of them
  const order = Object.values(shapes).sort((a, b) => (b.expanded ? 1 : 0) - (a.expanded ? 1 : 0)
    || (a.boundary ? 1 : 0) - (b.boundary ? 1 : 0));
  for (const s of order) {
    let attrs = s.expanded ? ' isExpanded="true"' : '';
    if (s.el.$type === 'bpmn:ExclusiveGateway') attrs += ' isMarkerVisible="true"';
    out.push(`      <bpmndi:BPMNShape id="${s.el.id}_di" bpmnElement="${s.el.id}"${attrs}>`);
    out.push(bounds(s, '        '));
    if (s.label) {
      out.push('        <bpmndi:BPMNLabel>');
      out.push(bounds(s.label, '          '));
      out.push('        </bpmndi:BPMNLabel>');
    }
    out.push('      </bpmndi:BPMNShape>');
  }
  for (const e of edges) {
    out.push(`      <bpmndi:BPMNEdge id="${e.el.id}_di" bpmnElement="${e.el.id}">`);
    for (const p of e.pts) out.push(`        <di:waypoint x="${r(p.x)}" y="${r(p.y)}" />`);
    if (e.label) {
      out.push('        <bpmndi:BPMNLabel>');
      out.push(bounds(e.label, '          '));
      out.push('        </bpmndi:BPMNLabel>');
    }
    out.push('      </bpmndi:BPMNEdge>');
  }
  out.push('    </bpmndi:BPMNPlane>');
  out.push('  </bpmndi:BPMNDiagram>');
  const di = out.join('\n') + '\n';
  const stripped = xml.replace(/ *<bpmndi:BPMNDiagram[\s\S]*<\/bpmndi:BPMNDiagram>\n?/, '');
  const end = stripped.lastIndexOf('</bpmn:definitions>');
  if (end < 0) throw new Error('no </bpmn:definitions>');
  return stripped.slice(0, end) + di + stripped.slice(end);
}

async function main(argv) {
  const check = argv.includes('--check');
  const names = argv.filter((a) => !a.startsWith('--'));
  const files = names.length ? names.map((n) => path.basename(n)) : Object.keys(layouts);
  let stale = 0;
  for (const name of files) {
    const grid = layouts[name];
    const file = path.join(WORKFLOWS, name);
    const xml = readFileSync(file, 'utf8');
    let laidOut;
    if (grid) {
      laidOut = await layoutXml(xml, grid, name);
    } else if (argv.includes('--auto')) {
      laidOut = await layoutProcess(xml.replace(/ *<bpmndi:BPMNDiagram[\s\S]*<\/bpmndi:BPMNDiagram>\n?/, ''));
    } else {
      throw new Error(`${name}: no entry in tools/bpmn/layouts.mjs (add one, or use --auto)`);
    }
    if (check) {
      if (laidOut !== xml) {
        console.error(`${name}: BPMNDI is out of date, run: node tools/bpmn/layout.mjs`);
        stale += 1;
      }
    } else if (laidOut !== xml) {
      writeFileSync(file, laidOut);
      console.log(`${name}: BPMNDI written`);
    } else {
      console.log(`${name}: unchanged`);
    }
  }
  if (stale) process.exit(1);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((e) => {
    console.error(e.message);
    process.exit(2);
  });
}
