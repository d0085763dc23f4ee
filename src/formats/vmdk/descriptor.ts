/**
 * The VMDK text descriptor (docs/FORMATS.md §3.2): parsed into a typed record validated with zod, and
 * serialized in the line order QEMU writes so that QEMU's substring-based parser, VMware and
 * libvmdk all accept it.
 *
 * The same parser serves a separate descriptor file and the descriptor embedded in a sparse extent
 * (sector `descriptorOffset`, NUL-padded). Unknown keys are kept; a line that is neither a comment,
 * a `key = value` pair nor an extent line is reported with its line number.
 */
import * as z from 'zod';
import { CorruptImageError, UnsupportedFeatureError, UsageError } from '../../errors.js';

export const EXTENT_ACCESS = ['RW', 'RDONLY', 'NOACCESS'] as const;
export type ExtentAccess = (typeof EXTENT_ACCESS)[number];
export const EXTENT_TYPES = ['FLAT', 'SPARSE', 'ZERO', 'VMFS', 'VMFSSPARSE', 'VMFSRDM', 'VMFSRAW', 'SESPARSE'] as const;
export type ExtentType = (typeof EXTENT_TYPES)[number];

/** parentCID value meaning "no parent". */
export const NO_PARENT_CID = 0xffffffff;

export interface DescriptorExtent {
  access: ExtentAccess;
  /** Extent size in 512-byte sectors. */
  sectors: number;
  type: ExtentType;
  /** File name as written, relative to the descriptor's folder (absent for ZERO). */
  fileName?: string;
  /** Sector offset inside the file (FLAT, optional for VMFSRDM/VMFSRAW). */
  offset?: number;
  /** 1-based line number in the descriptor (0 for records built in code). */
  line: number;
}

export interface Descriptor {
  version: number;
  encoding?: string;
  cid: number;
  parentCid: number;
  /** Absent only in descriptors embedded in a sparse extent that omit it (the header says what it is). */
  createType?: string;
  parentFileNameHint?: string;
  /** Header keys other than the ones above, in file order, values without quotes. */
  extra: Record<string, string>;
  extents: DescriptorExtent[];
  /** `ddb.*` keys in file order, values without quotes. */
  ddb: Record<string, string>;
}

export interface DescriptorSource {
  /** File name for errors. */
  file: string;
  /** Byte offset of the text in the file (sector 1 for embedded descriptors), for error offsets. */
  base: number;
  /** Embedded descriptors may omit createType (the sparse header defines the disk). */
  embedded: boolean;
}

/** Keys as VMware and VirtualBox write them (ddb.uuid.image, ddb.geometry.biosCylinders, …). */
const KEY = /^[A-Za-z_][A-Za-z0-9_.:-]*$/;
const EXTENT_LINE = /^(\S+)\s+(\S+)\s+(\S+)(?:\s+"([^"]*)")?(?:\s+(\S+))?\s*$/;
const ACCESS_WORD = /^(RW|RDONLY|NOACCESS)\s/;

/** Header keys with a typed field of their own. */
const KNOWN_HEADER = new Set(['version', 'encoding', 'CID', 'parentCID', 'createType', 'parentFileNameHint']);

const hex32 = z
  .string()
  .regex(/^[0-9a-fA-F]{1,8}$/, 'must be 1 to 8 hexadecimal digits')
  .transform((s) => parseInt(s, 16));

/** Fields with a format of their own; the rest stay strings. */
const headerSchema = (embedded: boolean) =>
  z.object({
    version: z.string().regex(/^[123]$/, 'must be 1, 2 or 3').transform(Number),
    encoding: z.string().optional(),
    CID: hex32,
    parentCID: hex32.optional(),
    createType: embedded ? z.string().min(1).optional() : z.string().min(1, 'must not be empty'),
    parentFileNameHint: z.string().min(1, 'must not be empty').optional(),
  });

const extentSchema = z
  .object({
    access: z.enum(EXTENT_ACCESS),
    sectors: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER / 512),
    type: z.enum(EXTENT_TYPES),
    fileName: z.string().min(1).max(511).optional(),
    offset: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER / 512).optional(),
  })
  .superRefine((e, ctx) => {
    // What QEMU's vmdk_parse_extents accepts, and what VMware's grammar requires.
    const needsFile = e.type !== 'ZERO';
    if (needsFile && e.fileName === undefined) ctx.addIssue({ code: 'custom', message: `a ${e.type} extent needs a quoted file name` });
    if (!needsFile && e.fileName !== undefined) ctx.addIssue({ code: 'custom', message: 'a ZERO extent takes no file name' });
    if (e.type === 'FLAT' && e.offset === undefined) ctx.addIssue({ code: 'custom', message: 'a FLAT extent needs a sector offset after its file name' });
    if ((e.type === 'VMFS' || e.type === 'SPARSE' || e.type === 'VMFSSPARSE' || e.type === 'SESPARSE' || e.type === 'ZERO') && e.offset !== undefined) {
      ctx.addIssue({ code: 'custom', message: `a ${e.type} extent takes no offset` });
    }
  });

interface Line {
  number: number;
  text: string;
  /** Character offset of the line in the text. */
  at: number;
}

function splitLines(text: string): Line[] {
  const out: Line[] = [];
  let at = 0;
  let n = 1;
  while (at <= text.length) {
    let end = text.indexOf('\n', at);
    if (end < 0) end = text.length;
    out.push({ number: n++, text: text.slice(at, end).replace(/\r$/, ''), at });
    at = end + 1;
  }
  return out;
}

function unquote(raw: string): string | undefined {
  const v = raw.trim();
  if (!v.startsWith('"')) return v;
  if (v.length < 2 || !v.endsWith('"')) return undefined;
  return v.slice(1, -1);
}

/** Parses descriptor text (already cut at the first NUL). */
export function parseDescriptor(text: string, src: DescriptorSource): Descriptor {
  const offsetOf = (line: Line) => src.base + Buffer.byteLength(text.slice(0, line.at));
  const malformed = (line: Line, why: string) =>
    new CorruptImageError(`descriptor line ${line.number} ${why}: '${line.text.trim().slice(0, 100)}'`, {
      file: src.file,
      field: `descriptor line ${line.number}`,
      offset: offsetOf(line),
    });

  const header: Record<string, string> = {};
  const headerLine: Record<string, Line> = {};
  const extra: Record<string, string> = {};
  const ddb: Record<string, string> = {};
  const extents: DescriptorExtent[] = [];

  for (const line of splitLines(text)) {
    const t = line.text.trim();
    if (t === '' || t.startsWith('#')) continue;
    if (ACCESS_WORD.test(t)) {
      const m = EXTENT_LINE.exec(t);
      if (!m) throw malformed(line, 'is not an extent line (ACCESS SECTORS TYPE "FILE" [OFFSET])');
      const [, access, sectors, type, fileName, offset] = m;
      if (!/^\d+$/.test(sectors)) throw malformed(line, 'has an extent size that is not a number of sectors');
      if (offset !== undefined && !/^\d+$/.test(offset)) throw malformed(line, 'has an extent offset that is not a number of sectors');
      if (!(EXTENT_TYPES as readonly string[]).includes(type)) {
        throw new UnsupportedFeatureError(`descriptor line ${line.number}: extent type '${type}' is not supported`, {
          file: src.file,
          field: `descriptor line ${line.number}`,
          offset: offsetOf(line),
        });
      }
      const parsed = extentSchema.safeParse({
        access,
        sectors: Number(sectors),
        type,
        fileName,
        offset: offset === undefined ? undefined : Number(offset),
      });
      if (!parsed.success) throw malformed(line, `is an invalid extent line (${parsed.error.issues[0].message})`);
      extents.push({ ...parsed.data, line: line.number });
      continue;
    }
    const eq = t.indexOf('=');
    if (eq <= 0) throw malformed(line, 'is neither a comment, a key = value pair nor an extent line');
    const key = t.slice(0, eq).trim();
    const value = unquote(t.slice(eq + 1));
    if (!KEY.test(key)) throw malformed(line, `has an invalid key '${key.slice(0, 40)}'`);
    if (value === undefined) throw malformed(line, 'has an unterminated quoted value');
    if (key.startsWith('ddb.')) {
      // First occurrence wins, as in QEMU's strstr-based lookups.
      if (!(key in ddb)) ddb[key] = value;
    } else if (KNOWN_HEADER.has(key)) {
      if (!(key in header)) {
        header[key] = value;
        headerLine[key] = line;
      }
    } else if (!(key in extra)) extra[key] = value;
  }

  const parsed = headerSchema(src.embedded).safeParse(header);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const key = String(issue.path[0] ?? '');
    const line = headerLine[key];
    if (line) throw malformed(line, `has an invalid ${key} (${issue.message})`);
    throw new CorruptImageError(`descriptor has no ${key || 'valid header'} line`, { file: src.file, field: key || 'descriptor', offset: src.base });
  }
  const h = parsed.data;
  return {
    version: h.version,
    ...(h.encoding !== undefined ? { encoding: h.encoding } : {}),
    cid: h.CID,
    parentCid: h.parentCID ?? NO_PARENT_CID,
    ...(h.createType !== undefined ? { createType: h.createType } : {}),
    ...(h.parentFileNameHint !== undefined ? { parentFileNameHint: h.parentFileNameHint } : {}),
    extra,
    extents,
    ddb,
  };
}

// ---------------------------------------------------------------------------------------------
// Serializing

/** The ddb keys QEMU writes, in its order; others follow in the record's order. */
const DDB_ORDER = [
  'ddb.virtualHWVersion',
  'ddb.geometry.cylinders',
  'ddb.geometry.heads',
  'ddb.geometry.sectors',
  'ddb.adapterType',
  'ddb.toolsVersion',
];

/**
 * QEMU finds createType, CID and parentFileNameHint by the first occurrence of those substrings
 * anywhere in the text (docs/FORMATS.md §3.2). Our header writes them first, so no later text can
 * shadow them; a value written before them must not contain them either.
 */
const SHADOWING = ['CID', 'createType', 'parentFileNameHint'];

function checkValue(what: string, v: string): void {
  if (/["\r\n\0]/.test(v)) throw new UsageError(`VMDK descriptor ${what} must not contain quotes, newlines or NUL bytes`, { field: what });
}

const hex8 = (n: number) => (n >>> 0).toString(16).padStart(8, '0');

/** Writes a descriptor QEMU's quirky parser, VMware and libvmdk all read back as `d`. */
export function serializeDescriptor(d: Descriptor): string {
  const out: string[] = ['# Disk DescriptorFile', `version=${d.version}`];
  if (d.encoding !== undefined) {
    checkValue('encoding', d.encoding);
    if (SHADOWING.some((s) => d.encoding!.includes(s))) throw new UsageError('VMDK descriptor encoding must not contain CID or createType', { field: 'encoding' });
    out.push(`encoding="${d.encoding}"`);
  }
  out.push(`CID=${hex8(d.cid)}`, `parentCID=${hex8(d.parentCid)}`);
  if (d.createType === undefined) throw new UsageError('VMDK descriptor needs a createType', { field: 'createType' });
  checkValue('createType', d.createType);
  if (!/^[A-Za-z0-9]+$/.test(d.createType)) throw new UsageError(`invalid createType '${d.createType}'`, { field: 'createType' });
  out.push(`createType="${d.createType}"`);
  if (d.parentFileNameHint !== undefined) {
    checkValue('parentFileNameHint', d.parentFileNameHint);
    out.push(`parentFileNameHint="${d.parentFileNameHint}"`);
  }
  for (const [k, v] of Object.entries(d.extra)) {
    if (!KEY.test(k) || KNOWN_HEADER.has(k) || k.startsWith('ddb.')) throw new UsageError(`invalid descriptor key '${k}'`, { field: k });
    checkValue(k, v);
    out.push(`${k}="${v}"`);
  }
  // QEMU's template has no blank line after parentFileNameHint; written the same, a delta we make
  // is byte for byte the one qemu-img makes.
  if (d.parentFileNameHint === undefined || Object.keys(d.extra).length) out.push('');
  out.push('# Extent description');
  for (const e of d.extents) {
    const r = extentSchema.safeParse(e);
    if (!r.success) throw new UsageError(`invalid extent: ${r.error.issues[0].message}`, { field: 'extent' });
    if (e.fileName !== undefined) checkValue('extent file name', e.fileName);
    let line = `${e.access} ${e.sectors} ${e.type}`;
    if (e.fileName !== undefined) line += ` "${e.fileName}"`;
    if (e.offset !== undefined) line += ` ${e.offset}`;
    out.push(line);
  }
  out.push('', '# The Disk Data Base', '#DDB', '');
  const keys = [...DDB_ORDER.filter((k) => k in d.ddb), ...Object.keys(d.ddb).filter((k) => !DDB_ORDER.includes(k))];
  for (const k of keys) {
    if (!KEY.test(k) || !k.startsWith('ddb.')) throw new UsageError(`invalid disk database key '${k}'`, { field: k });
    checkValue(k, d.ddb[k]);
    out.push(`${k} = "${d.ddb[k]}"`);
  }
  return `${out.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// Disk database helpers

export interface Geometry {
  cylinders: number;
  heads: number;
  sectors: number;
}

const ddbInt = (d: Descriptor, key: string): number | undefined => {
  const v = d.ddb[key];
  return v !== undefined && /^\d{1,15}$/.test(v) ? Number(v) : undefined;
};

export function geometryOf(d: Descriptor): Geometry | undefined {
  const cylinders = ddbInt(d, 'ddb.geometry.cylinders');
  const heads = ddbInt(d, 'ddb.geometry.heads');
  const sectors = ddbInt(d, 'ddb.geometry.sectors');
  return cylinders !== undefined && heads !== undefined && sectors !== undefined ? { cylinders, heads, sectors } : undefined;
}

/**
 * QEMU's geometry for a new disk (docs/FORMATS.md §3.2): 16 heads for IDE, 255 otherwise, 63 sectors,
 * cylinders = size / (63 × heads × 512), not capped.
 */
export function qemuGeometry(virtualSize: number, adapterType: string): Geometry {
  const heads = adapterType === 'ide' ? 16 : 255;
  return { cylinders: Math.floor(virtualSize / (63 * heads * 512)), heads, sectors: 63 };
}
