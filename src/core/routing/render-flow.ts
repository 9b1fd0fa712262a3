/** Renderings of a Flow: readable text (the golden files), Mermaid sequence diagrams, and plain JSON. */
import { protocolTitle } from '../protocols/protocol.ts';
import type { Flow, FlowOutcome, FlowStep } from './flow.ts';

export type FlowFormat = 'text' | 'json' | 'mermaid' | 'summary';

export function renderFlow(flow: Flow, format: FlowFormat): string {
  switch (format) {
    case 'text':
      return flowText(flow);
    case 'json':
      return JSON.stringify(flow, null, 2) + '\n';
    case 'mermaid':
      return flowMermaid(flow);
    case 'summary':
      return flowSummary([flow]);
  }
}

/** Many flows at a glance: one row each with its outcome and the servers it passed through. */
export function flowSummary(flows: readonly Flow[]): string {
  const rows = flows.map((f) => [
    f.user,
    protocolTitle[f.protocol],
    f.client,
    String(f.steps.length),
    summaryOutcome(f.outcome),
    f.legs.map((leg) => leg.join(' > ')).join(' | '),
  ]);
  const header = ['user', 'protocol', 'client', 'steps', 'outcome', 'path'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n') + '\n';
}

function summaryOutcome(o: FlowOutcome): string {
  switch (o.kind) {
    case 'answered':
      return `answered by ${o.by}`;
    case 'redirected':
      return `${o.status} to ${o.location}`;
    case 'refused':
      return `refused ${o.status} ${o.code}`;
  }
}

export function flowTitle(flow: Flow): string {
  const via = flow.discovered ? `found through Autodiscover at ${flow.host}` : `via ${flow.host}`;
  return `${protocolTitle[flow.protocol]} for ${flow.user}, ${flow.client} client, ${via}`;
}

function arrow(step: FlowStep): string {
  return step.to ? `${step.from} -> ${step.to}` : step.from;
}

/** The numbered steps as text, each with its URL and the reasons ("why") behind it. */
export function flowText(flow: Flow): string {
  const out: string[] = [flowTitle(flow)];
  for (const step of flow.steps) {
    out.push(`${String(step.n).padStart(3)}. [${step.kind}] ${arrow(step)}`);
    out.push(`       ${step.text}`);
    if (step.url) out.push(`       url: ${step.url}`);
    for (const a of step.alternatives ?? [])
      out.push(`       or: ${a.server} at ${a.url} (equivalent server)`);
    for (const d of step.details ?? []) out.push(`       - ${d}`);
    for (const r of step.reasons) out.push(`       why: ${r.text} (${r.source}) {${r.rule}}`);
  }
  out.push(`Outcome: ${outcomeText(flow.outcome)}; ${flow.steps.length} steps.`);
  const legs = flow.legs.map((leg) => leg.join(' -> ')).join(', then ');
  out.push(`Path: ${legs}${flow.frontEndInvolved ? '' : ' (the front end is not involved)'}.`);
  return out.join('\n') + '\n';
}

export function outcomeText(o: FlowOutcome): string {
  switch (o.kind) {
    case 'answered':
      return `answered by ${o.by}`;
    case 'redirected':
      return `redirected (HTTP ${o.status}) to ${o.location}, outside the estate's servers`;
    case 'refused':
      return `refused by ${o.by} with HTTP ${o.status} (${o.code})`;
  }
}

/** A Mermaid sequence diagram; messages carry the step numbers so they match the text. */
export function flowMermaid(flow: Flow): string {
  const ids = new Map<string, string>();
  const id = (name: string): string => {
    let v = ids.get(name);
    if (!v) {
      v = `P${ids.size}`;
      ids.set(name, v);
    }
    return v;
  };
  const body: string[] = [];
  for (const s of flow.steps) {
    const label = `${s.n}. ${mermaidText(s)}`;
    if (!s.to) {
      body.push(`  Note over ${id(s.from)}: ${label}`);
    } else {
      const dashed =
        s.kind === 'return' || s.kind === 'answer' || s.kind === 'redirect' || s.kind === 'refuse';
      body.push(`  ${id(s.from)}${dashed ? '-->>' : '->>'}${id(s.to)}: ${label}`);
    }
  }
  const head = ['sequenceDiagram', `  title ${escape(flowTitle(flow))}`];
  for (const [name, v] of ids) head.push(`  participant ${v} as ${escape(name)}`);
  return [...head, ...body].join('\n') + '\n';
}

function mermaidText(s: FlowStep): string {
  switch (s.kind) {
    case 'connect':
    case 'proxy': {
      const text = s.url ? `${s.kind === 'connect' ? 'request' : 'proxy'} ${s.url}` : 'passes the request';
      const or = (s.alternatives ?? []).map((a) => ` or ${a.server}`).join('');
      return escape(text + or);
    }
    case 'redirect':
      return escape(`redirect ${s.url ?? ''}`);
    default:
      return escape(s.text);
  }
}

/** Mermaid treats `;` and `#` specially in messages. */
const escape = (s: string): string => s.replace(/;/g, ',').replace(/#/g, '#35;');
