#!/usr/bin/env node
// Prints a Parquet or CSV table as normalized CSV (header row first), so the end-to-end tests can
// compare respawn's outputs with expected files using a reader that shares no code with respawn
// or DuckDB: Parquet is decoded by hyparquet (pure JavaScript, with hyparquet-compressors for
// zstd/gzip/lz4/brotli), installed by scripts/setup.sh into .deps/node-reader.
//
// Usage: node tests/tools/read_table.mjs [--sort] [--format parquet|csv] FILE
//        node tests/tools/read_table.mjs --batch < LIST
//   --sort     sort the data rows (for outputs whose row order is not defined)
//   --format   override the format guessed from the extension (.parquet, .csv)
//   --batch    read "sorted|ordered<TAB>FILE<TAB>DEST" lines from stdin and write each table to
//              DEST (one process for many files); a file that cannot be read fails the batch
// Environment: RESPAWN_NODE_READER_DIR (default <repo>/.deps/node-reader).
//
// Normalization (applied to both formats, so an expected CSV written by hand compares equal to
// a Parquet output): NULL and the empty CSV field print as empty; numbers print in JavaScript's
// shortest round-trip form (12.50 -> 12.5, 3.0 -> 3, -0 -> 0); integers keep all their digits;
// dates print as YYYY-MM-DD and timestamps as YYYY-MM-DD HH:MM:SS[.fff] (UTC); booleans as
// true/false; a field is quoted only when it holds a comma, a quote or a line break.
// Exit status: 0 printed, 1 unreadable or malformed file, 2 usage error.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

function fail(code, message) {
  process.stderr.write(`read_table: ${message}\n`);
  process.exit(code);
}

const args = process.argv.slice(2);
let sortRows = false;
let format = null;
let file = null;
let batch = false;
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--sort') sortRows = true;
  else if (a === '--format') format = args[++i];
  else if (a === '--batch') batch = true;
  else if (a.startsWith('--')) fail(2, `unknown option ${a}`);
  else if (file === null) file = a;
  else fail(2, 'exactly one FILE expected');
}
if (file === null && !batch) fail(2, 'usage: read_table.mjs [--sort] [--format parquet|csv] FILE');

function formatOf(path) {
  if (format !== null) return format;
  if (/\.parquet$/i.test(path)) return 'parquet';
  if (/\.csv$/i.test(path)) return 'csv';
  fail(2, `${path}: cannot tell the format from the extension; pass --format`);
}

const INT_RE = /^[-+]?\d+$/;
const FLOAT_RE = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

function normalizeNumberText(text) {
  if (INT_RE.test(text)) {
    const neg = text.startsWith('-');
    const digits = text.replace(/^[-+]/, '').replace(/^0+(?=\d)/, '');
    return (neg && digits !== '0' ? '-' : '') + digits;
  }
  const n = Number(text);
  if (Object.is(n, -0)) return '0';
  return String(n);
}

function pad(n, w = 2) {
  return String(n).padStart(w, '0');
}

function formatValue(v) {
  if (v === null || v === undefined) return '';
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return 'nan';
    if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
    if (Object.is(v, -0)) return '0';
    return String(v);
  }
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (v instanceof Date) {
    const date = `${v.getUTCFullYear()}-${pad(v.getUTCMonth() + 1)}-${pad(v.getUTCDate())}`;
    const h = v.getUTCHours(), m = v.getUTCMinutes(), s = v.getUTCSeconds(), ms = v.getUTCMilliseconds();
    if (h === 0 && m === 0 && s === 0 && ms === 0) return date;
    return `${date} ${pad(h)}:${pad(m)}:${pad(s)}${ms ? '.' + pad(ms, 3) : ''}`;
  }
  if (typeof v === 'string') return FLOAT_RE.test(v) ? normalizeNumberText(v) : v;
  if (v instanceof Uint8Array) return Buffer.from(v).toString('hex');
  return JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? x.toString() : x));
}

function quote(field) {
  return /[",\r\n]/.test(field) ? `"${field.replace(/"/g, '""')}"` : field;
}

// RFC 4180 CSV: quoted fields may hold commas, doubled quotes and line breaks.
function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = '';
  let i = 0;
  let inQuotes = false;
  let fieldStarted = false;
  if (text.charCodeAt(0) === 0xfeff) i = 1;
  for (; i < text.length; i++) {
    const c = text[i];
    if (inQuotes) {
      if (c === '"') {
        if (text[i + 1] === '"') { field += '"'; i++; } else inQuotes = false;
      } else field += c;
      continue;
    }
    if (c === '"' && !fieldStarted) { inQuotes = true; fieldStarted = true; continue; }
    if (c === ',') { row.push(field); field = ''; fieldStarted = false; continue; }
    if (c === '\r' && text[i + 1] === '\n') continue;
    if (c === '\n' || c === '\r') {
      row.push(field); rows.push(row); row = []; field = ''; fieldStarted = false;
      continue;
    }
    field += c;
    fieldStarted = true;
  }
  if (inQuotes) throw new Error('unterminated quoted field');
  if (fieldStarted || row.length > 0) { row.push(field); rows.push(row); }
  return rows;
}

async function readParquet(path) {
  const here = dirname(fileURLToPath(import.meta.url));
  const depsDir = process.env.RESPAWN_NODE_READER_DIR || resolve(here, '..', '..', '.deps', 'node-reader');
  const modules = join(depsDir, 'node_modules');
  if (!existsSync(join(modules, 'hyparquet')) || !existsSync(join(modules, 'hyparquet-compressors'))) {
    fail(1, `hyparquet is not installed in ${depsDir}; run scripts/setup.sh`);
  }
  const hyparquet = await import(pathToFileURL(join(modules, 'hyparquet', 'src', 'node.js')).href);
  const { compressors } = await import(
    pathToFileURL(join(modules, 'hyparquet-compressors', 'src', 'index.js')).href);
  const buf = readFileSync(path);
  const file = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  const metadata = await hyparquet.parquetMetadataAsync(file);
  const schema = hyparquet.parquetSchema(metadata);
  const header = schema.children.map((c) => c.element.name);
  let rows = [];
  await hyparquet.parquetRead({
    file, metadata, compressors, rowFormat: 'array',
    onComplete: (data) => { rows = data; },
  });
  if (rows.length !== Number(metadata.num_rows)) {
    throw new Error(`read ${rows.length} rows, metadata says ${metadata.num_rows}`);
  }
  return { header, rows: rows.map((r) => r.map(formatValue)) };
}

function readCsv(path) {
  const rows = parseCsv(readFileSync(path, 'utf8'));
  if (rows.length === 0) return { header: [], rows: [] };
  const header = rows[0];
  const body = rows.slice(1);
  for (const [n, r] of body.entries()) {
    if (r.length !== header.length) {
      throw new Error(`row ${n + 2} has ${r.length} fields, the header has ${header.length}`);
    }
  }
  return { header, rows: body.map((r) => r.map(formatValue)) };
}

async function render(path, sorted) {
  if (!existsSync(path)) throw new Error('no such file');
  const table = formatOf(path) === 'parquet' ? await readParquet(path) : readCsv(path);
  const lines = table.rows.map((r) => r.map(quote).join(','));
  if (sorted) lines.sort();
  return [table.header.map(quote).join(','), ...lines].join('\n') + '\n';
}

if (batch) {
  const jobs = readFileSync(0, 'utf8').split('\n').filter((l) => l.trim() !== '');
  for (const job of jobs) {
    const [mode, path, dest] = job.split('\t');
    if (!dest || (mode !== 'sorted' && mode !== 'ordered')) fail(2, `bad batch line: ${job}`);
    try {
      writeFileSync(dest, await render(path, mode === 'sorted'));
    } catch (e) {
      fail(1, `${path}: ${e && e.message ? e.message : e}`);
    }
  }
} else {
  try {
    process.stdout.write(await render(file, sortRows));
  } catch (e) {
    fail(1, `${file}: ${e && e.message ? e.message : e}`);
  }
}
