import type { BenchReport } from './types.js';

export function renderHtml(report: BenchReport): string {
  return `<!doctype html><meta charset="utf-8"><title>zt-authz bench</title><pre>${JSON.stringify(report, null, 2).replace(/</g, '&lt;')}</pre>`;
}
