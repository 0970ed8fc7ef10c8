// Offline checks for the designer files, beyond bpmnlint:
//  - every BPMN and DMN file in workflows/ imports into bpmn-moddle / dmn-moddle (the
//    readers behind bpmn.io and Camunda Modeler) without warnings, e.g. unresolved references;
//  - the BPMNDI matches the grid in layouts.mjs (node tools/bpmn/layout.mjs rewrites it);
//  - time_limits.dmn matches its generator (node tools/bpmn/make_time_limits.mjs rewrites it).
//
//   node tools/bpmn/check.mjs        (or: npm run check)
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { BpmnModdle } from 'bpmn-moddle';
import { DmnModdle } from 'dmn-moddle';
import layouts from './layouts.mjs';
import { layoutXml } from './layout.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const WORKFLOWS = path.resolve(here, '../../workflows');
let problems = 0;

for (const name of readdirSync(WORKFLOWS).sort()) {
  const file = path.join(WORKFLOWS, name);
  let warnings = null;
  if (name.endsWith('.bpmn')) {
    const xml = readFileSync(file, 'utf8');
    ({ warnings } = await new BpmnModdle().fromXML(xml));
    if (layouts[name]) {
      const laidOut = await layoutXml(xml, layouts[name], name);
      if (laidOut !== xml) {
        console.error(`${name}: BPMNDI differs from tools/bpmn/layouts.mjs (run node tools/bpmn/layout.mjs)`);
        problems += 1;
      }
    }
  } else if (name.endsWith('.dmn')) {
    ({ warnings } = await new DmnModdle().fromXML(readFileSync(file, 'utf8')));
  } else {
    continue;
  }
  for (const w of warnings) console.error(`${name}: ${w.message}`);
  problems += warnings.length;
  if (!warnings.length) console.log(`${name}: imports cleanly`);
}

try {
  execFileSync(process.execPath, [path.join(here, 'make_time_limits.mjs'), '--check'], { stdio: 'inherit' });
} catch {
  problems += 1;
}

if (problems) {
  console.error(`${problems} problem(s)`);
  process.exit(1);
}
