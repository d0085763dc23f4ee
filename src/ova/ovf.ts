/**
 * The OVF descriptor (DMTF DSP0243) as a typed model: files, disks, networks and each virtual
 * system's name, OS, CPUs, memory, firmware, NICs and which disk sits on which controller/unit.
 *
 * fast-xml-parser is used because it is pure JS, maintained, has no dependencies that reach the
 * file system or network, and does not resolve external entities. We still refuse any DOCTYPE
 * before parsing (no DTD, so no entity expansion: "billion laughs" cannot start) and bound the
 * size, depth and element counts of the document so a hostile OVF gives a typed error.
 * Namespace prefixes are stripped after the envelope's namespace is read, because exporters bind
 * the OVF namespace to `ovf:`, to the default namespace, or both (VirtualBox), and VMware's
 * `vmw:` and VirtualBox's `vbox:` attributes never collide with the OVF names we read.
 */
import { XMLParser } from 'fast-xml-parser';
import { z } from 'zod';
import { CorruptImageError, LimitExceededError } from '../errors.js';

/** Real descriptors are 5–50 KiB; VirtualBox embeds its whole machine config and stays far below. */
export const MAX_OVF_BYTES = 4 * 1024 * 1024;
/** Real descriptors nest about 8 deep. */
export const MAX_OVF_DEPTH = 64;
/** Elements in one document: far above any real VM (hundreds of Items at most). */
export const MAX_OVF_ELEMENTS = 200_000;
/** Virtual systems, disks, files, NICs: bounded so listings stay printable. */
export const MAX_OVF_ENTRIES = 4096;

const NAMESPACES: Record<string, '0.9' | '1.0' | '2.0'> = {
  'http://www.vmware.com/schema/ovf/1/envelope': '0.9',
  'http://schemas.dmtf.org/ovf/envelope/1': '1.0',
  'http://schemas.dmtf.org/ovf/envelope/2': '2.0',
};

/** OVF disk format URIs → our format names. */
const FORMAT_URIS: [RegExp, string, string | undefined][] = [
  [/vmdk\.html#streamOptimized$/i, 'vmdk', 'streamOptimized'],
  [/vmdk\.html#sparse$/i, 'vmdk', 'monolithicSparse'],
  [/vmdk\.html#compressed$/i, 'vmdk', 'compressed'],
  [/vmdk\.html/i, 'vmdk', undefined],
  [/virtualbox\.org.*vdi/i, 'vdi', undefined],
  [/vhd/i, 'vhd', undefined],
  [/qcow2?/i, 'qcow2', undefined],
  [/raw|iso/i, 'raw', undefined],
];

export const OvfFile = z.object({
  id: z.string(),
  href: z.string(),
  size: z.number().int().nonnegative().optional(),
  compression: z.string().optional(),
  chunkSize: z.number().int().positive().optional(),
});
export const OvfDisk = z.object({
  id: z.string(),
  fileRef: z.string().optional(),
  capacity: z.number().int().nonnegative(),
  populatedSize: z.number().int().nonnegative().optional(),
  formatUri: z.string().optional(),
  format: z.string().optional(),
  subformat: z.string().optional(),
});
export const OvfController = z.object({ instanceId: z.string(), kind: z.string(), subtype: z.string().optional(), address: z.string().optional() });
export const OvfAttachment = z.object({ diskId: z.string(), controller: z.string().optional(), controllerKind: z.string().optional(), unit: z.number().int().nonnegative().optional() });
export const OvfNic = z.object({ name: z.string().optional(), network: z.string().optional(), type: z.string().optional(), mac: z.string().optional() });
export const OvfSystem = z.object({
  id: z.string(),
  name: z.string(),
  osId: z.string().optional(),
  osType: z.string().optional(),
  osDescription: z.string().optional(),
  cpus: z.number().int().positive().optional(),
  memory: z.number().int().nonnegative().optional(),
  firmware: z.enum(['bios', 'efi']),
  nics: z.array(OvfNic),
  controllers: z.array(OvfController),
  disks: z.array(OvfAttachment),
});
export const OvfModel = z.object({
  version: z.enum(['0.9', '1.0', '2.0']),
  files: z.array(OvfFile),
  disks: z.array(OvfDisk),
  networks: z.array(z.object({ name: z.string(), description: z.string().optional() })),
  systems: z.array(OvfSystem),
  collection: z.object({ id: z.string(), systems: z.array(z.string()) }).optional(),
});
export type OvfModel = z.infer<typeof OvfModel>;
export type OvfSystem = z.infer<typeof OvfSystem>;

// The parsed document is dynamic; these helpers read it defensively and never trust a shape.
type Node = Record<string, unknown>;
const isNode = (v: unknown): v is Node => typeof v === 'object' && v !== null && !Array.isArray(v);
const list = (v: unknown): Node[] => (Array.isArray(v) ? v : v === undefined ? [] : [v]).filter(isNode);
function text(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (isNode(v) && '#text' in v) return text(v['#text']);
  return undefined;
}
const attr = (n: Node, name: string): string | undefined => text(n[`@${name}`]);

/** `byte * 2^30`, `byte * 1024`, `MegaBytes`, … → a multiplier. */
export function allocationUnits(units: string | undefined, file: string, field: string): number {
  if (units === undefined || units.trim() === '') return 1;
  const u = units.trim().replace(/\s+/g, ' ');
  const named: Record<string, number> = { byte: 1, bytes: 1, kilobytes: 2 ** 10, megabytes: 2 ** 20, gigabytes: 2 ** 30, kb: 2 ** 10, mb: 2 ** 20, gb: 2 ** 30 };
  const simple = named[u.toLowerCase()];
  if (simple !== undefined) return simple;
  const m = /^byte ?\* ?(\d+)(?: ?\^ ?(\d+))?$/i.exec(u);
  if (m) {
    const v = m[2] !== undefined ? Number(m[1]) ** Number(m[2]) : Number(m[1]);
    if (Number.isSafeInteger(v) && v > 0) return v;
  }
  throw new CorruptImageError(`unknown allocation units ${JSON.stringify(units.slice(0, 40))}`, { file, field });
}

function bytes(value: string | undefined, units: string | undefined, file: string, field: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\s*\d+\s*$/.test(value)) throw new CorruptImageError(`${field} is not a number: ${JSON.stringify(value.slice(0, 40))}`, { file, field });
  const v = Number(value) * allocationUnits(units, file, field);
  if (!Number.isSafeInteger(v)) throw new CorruptImageError(`${field} is too large`, { file, field });
  return v;
}

function count(n: Node[], file: string, what: string): Node[] {
  if (n.length > MAX_OVF_ENTRIES) throw new LimitExceededError(`more than ${MAX_OVF_ENTRIES} ${what}`, { file, field: what });
  return n;
}

/** Depth and element count, checked on the text before any parser builds a tree. */
function checkShape(xml: string, file: string): void {
  if (/<!DOCTYPE|<!ENTITY/i.test(xml)) {
    throw new CorruptImageError('OVF descriptor has a DOCTYPE/ENTITY declaration (refused: no DTDs, no entity expansion)', { file, field: 'DOCTYPE' });
  }
  let depth = 0;
  let elements = 0;
  const tag = /<(\/?)[A-Za-z_][^>]*?(\/?)>|<!--[\s\S]*?-->|<!\[CDATA\[[\s\S]*?\]\]>/g;
  for (let m = tag.exec(xml); m; m = tag.exec(xml)) {
    if (m[0].startsWith('<!')) continue;
    if (m[1]) depth--;
    else if (!m[2]) depth++;
    if (++elements > MAX_OVF_ELEMENTS) throw new LimitExceededError(`OVF descriptor has more than ${MAX_OVF_ELEMENTS} elements`, { file, offset: m.index });
    if (depth > MAX_OVF_DEPTH) throw new LimitExceededError(`OVF descriptor nests deeper than ${MAX_OVF_DEPTH}`, { file, offset: m.index });
  }
}

function firmwareOf(vs: Node): 'bios' | 'efi' {
  for (const hw of list(vs.VirtualHardwareSection)) {
    for (const c of list(hw.Config)) if (attr(c, 'key') === 'firmware' && /efi/i.test(attr(c, 'value') ?? '')) return 'efi';
  }
  for (const m of list(vs.Machine)) {
    for (const hw of list(m.Hardware)) {
      for (const f of list(hw.Firmware)) if (/efi/i.test(attr(f, 'type') ?? '')) return 'efi';
    }
  }
  return 'bios';
}

const CONTROLLER_KINDS: Record<string, string> = { '5': 'ide', '6': 'scsi', '20': 'sata', '7': 'fibre-channel', '8': 'iscsi', '9': 'infiniband' };

function system(vs: Node, file: string): OvfSystem {
  const id = attr(vs, 'id') ?? '';
  const os = list(vs.OperatingSystemSection)[0];
  const osVbox = os ? text(os.OSType) : undefined;
  const osVmw = os ? attr(os, 'osType') : undefined;
  const out: OvfSystem = {
    id,
    name: text(vs.Name) ?? id,
    osId: os ? attr(os, 'id') : undefined,
    osType: osVmw ?? osVbox,
    osDescription: os ? text(os.Description) : undefined,
    firmware: firmwareOf(vs),
    nics: [],
    controllers: [],
    disks: [],
  };
  const items: Node[] = [];
  for (const hw of list(vs.VirtualHardwareSection)) items.push(...list(hw.Item), ...list(hw.StorageItem), ...list(hw.EthernetPortItem));
  count(items, file, 'hardware items');
  const controllers = new Map<string, z.infer<typeof OvfController>>();
  for (const it of items) {
    const type = text(it.ResourceType);
    const inst = text(it.InstanceID) ?? '';
    if (type === '3') {
      const n = Number(text(it.VirtualQuantity));
      if (Number.isSafeInteger(n) && n > 0) out.cpus = n;
    } else if (type === '4') {
      out.memory = bytes(text(it.VirtualQuantity), text(it.AllocationUnits) ?? 'byte * 2^20', file, 'memory');
    } else if (type && CONTROLLER_KINDS[type]) {
      const c = { instanceId: inst, kind: CONTROLLER_KINDS[type]!, subtype: text(it.ResourceSubType), address: text(it.Address) };
      controllers.set(inst, c);
      out.controllers.push(c);
    } else if (type === '10') {
      out.nics.push({ name: text(it.ElementName), network: text(it.Connection), type: text(it.ResourceSubType), mac: text(it.Address) });
    }
  }
  for (const it of items) {
    if (text(it.ResourceType) !== '17') continue;
    const host = text(it.HostResource) ?? '';
    const m = /^(?:ovf:)?\/disk\/(.+)$/.exec(host.trim());
    if (!m) continue;
    const parent = text(it.Parent);
    const unit = Number(text(it.AddressOnParent));
    out.disks.push({
      diskId: m[1]!,
      controller: parent,
      controllerKind: parent !== undefined ? controllers.get(parent)?.kind : undefined,
      unit: Number.isSafeInteger(unit) && unit >= 0 ? unit : undefined,
    });
  }
  return out;
}

export function parseOvf(xml: string, file: string): OvfModel {
  if (xml.length > MAX_OVF_BYTES) throw new LimitExceededError(`OVF descriptor is larger than ${MAX_OVF_BYTES} bytes`, { file });
  checkShape(xml, file);
  let doc: Node;
  try {
    const parser = new XMLParser({
      ignoreAttributes: false,
      attributeNamePrefix: '@',
      removeNSPrefix: true,
      parseTagValue: false,
      parseAttributeValue: false,
      processEntities: true,
      htmlEntities: false,
    });
    doc = parser.parse(xml, true) as Node;
  } catch (e) {
    throw new CorruptImageError(`OVF descriptor is not well-formed XML: ${(e as Error).message}`, { file, cause: e });
  }
  // An empty <Envelope/> parses as '' rather than an object.
  const env = doc.Envelope === '' ? {} : doc.Envelope;
  if (!isNode(env)) throw new CorruptImageError('OVF descriptor has no Envelope element', { file, field: 'Envelope' });
  // The parser drops xmlns declarations when it strips prefixes: read them from the Envelope tag.
  let version: OvfModel['version'] | undefined;
  const start = /<(?:[A-Za-z_][\w.-]*:)?Envelope\b[^>]*>/.exec(xml)?.[0] ?? '';
  for (const m of start.matchAll(/xmlns(?::[\w.-]+)?\s*=\s*["']([^"']*)["']/g)) version ??= NAMESPACES[m[1]!];
  if (!version) throw new CorruptImageError('OVF Envelope has no known OVF namespace (0.9, 1.0 or 2.0)', { file, field: 'xmlns' });

  const files = count(list(isNode(env.References) ? env.References.File : undefined), file, 'files').map((f) => ({
    id: attr(f, 'id') ?? '',
    href: attr(f, 'href') ?? '',
    size: bytes(attr(f, 'size'), undefined, file, 'File size'),
    compression: attr(f, 'compression'),
    chunkSize: bytes(attr(f, 'chunkSize'), undefined, file, 'chunkSize') || undefined,
  }));
  const diskSection = list(env.DiskSection)[0] ?? list(env.VirtualDiskSection)[0];
  const disks = count(list(diskSection?.Disk), file, 'disks').map((d) => {
    const uri = attr(d, 'format');
    const known = uri ? FORMAT_URIS.find(([re]) => re.test(uri)) : undefined;
    const id = attr(d, 'diskId') ?? '';
    return {
      id,
      fileRef: attr(d, 'fileRef'),
      capacity: bytes(attr(d, 'capacity'), attr(d, 'capacityAllocationUnits'), file, `disk ${id} capacity`) ?? 0,
      populatedSize: bytes(attr(d, 'populatedSize'), undefined, file, `disk ${id} populatedSize`),
      formatUri: uri,
      format: known?.[1],
      subformat: known?.[2],
    };
  });
  const networks = count(list(list(env.NetworkSection)[0]?.Network), file, 'networks').map((n) => ({ name: attr(n, 'name') ?? '', description: text(n.Description) }));
  const systems: OvfSystem[] = [];
  let collection: OvfModel['collection'];
  for (const vs of count(list(env.VirtualSystem), file, 'virtual systems')) systems.push(system(vs, file));
  for (const c of list(env.VirtualSystemCollection)) {
    const members = count(list(c.VirtualSystem), file, 'virtual systems');
    for (const vs of members) systems.push(system(vs, file));
    collection = { id: attr(c, 'id') ?? '', systems: members.map((m) => attr(m, 'id') ?? '') };
  }
  const parsed = OvfModel.safeParse({ version, files, disks, networks, systems, collection });
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new CorruptImageError(`OVF descriptor: ${issue.path.join('.')}: ${issue.message}`, { file, field: issue.path.join('.') });
  }
  return parsed.data;
}
