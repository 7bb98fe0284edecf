// Check an AsyncAPI document with the official parser (@asyncapi/parser).
//
// Usage: node tests/tooling/validate-asyncapi.mjs FILE
//
// Prints one line per diagnostic ("error|warning|info|hint PATH: MESSAGE [CODE]")
// and a closing summary line ("FILE: N errors, N warnings, N infos, N hints").
// Exits 0 when the parser produced a document and reported no error, 1 when it
// reported errors, 2 on bad usage or an unreadable file. The Python contract
// tests read both the exit status and the summary, so keep their shapes.

import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Parser, DiagnosticSeverity } from '@asyncapi/parser';

const SEVERITY = {
  [DiagnosticSeverity.Error]: 'error',
  [DiagnosticSeverity.Warning]: 'warning',
  [DiagnosticSeverity.Information]: 'info',
  [DiagnosticSeverity.Hint]: 'hint',
};

async function main(argv) {
  if (argv.length !== 1) {
    console.error('usage: node validate-asyncapi.mjs FILE');
    return 2;
  }
  const source = resolve(argv[0]);
  let text;
  try {
    text = await readFile(source, 'utf8');
  } catch (error) {
    console.error(`cannot read ${argv[0]}: ${error.message}`);
    return 2;
  }

  const parser = new Parser();
  const { document, diagnostics } = await parser.parse(text, { source });

  const counts = { error: 0, warning: 0, info: 0, hint: 0 };
  for (const diagnostic of diagnostics) {
    const severity = SEVERITY[diagnostic.severity] ?? 'error';
    counts[severity] += 1;
    const where = diagnostic.path.length ? diagnostic.path.join('.') : '(root)';
    console.log(`${severity} ${where}: ${diagnostic.message} [${diagnostic.code}]`);
  }
  const failed = counts.error > 0 || document === undefined;
  console.log(
    `${argv[0]}: ${counts.error} errors, ${counts.warning} warnings, ` +
      `${counts.info} infos, ${counts.hint} hints` +
      (document === undefined ? ' (no document produced)' : ''),
  );
  return failed ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
