/** What `guestkit info vm.ova` prints: the VM(s) and their disks, as text or a stable JSON shape. */
import { FileSource } from '../stream/source.js';
import { looksLikeOva, Ova, type OvaInfo } from './ova.js';

/** The OvaInfo when the file is an OVA, else undefined (the caller goes on to read it as an image). */
export async function ovaInfoIfOva(path: string): Promise<OvaInfo | undefined> {
  const src = await FileSource.open(path);
  try {
    if (!looksLikeOva(await src.readUpTo(0, 4096))) return undefined;
    const ova = await Ova.fromSource(src);
    return { ...ova.info, format: 'ova' } as OvaInfo;
  } finally {
    await src.close();
  }
}

const mib = (n: number | undefined) => (n === undefined ? '?' : n % 2 ** 30 === 0 ? `${n / 2 ** 30} GiB` : n % 2 ** 20 === 0 ? `${n / 2 ** 20} MiB` : `${n} bytes`);

export function humanOva(i: OvaInfo): string {
  const lines = [`image: ${i.file}`, `file format: ova (OVF ${i.ovf.version})`, `descriptor: ${i.descriptor}`];
  lines.push(`manifest: ${i.manifest ?? 'none'}`);
  if (i.certificate) lines.push(`certificate: ${i.certificate} (present; its signature is not verified)`);
  if (i.ovf.collection) lines.push(`virtual system collection: ${i.ovf.collection.id} (${i.ovf.collection.systems.join(', ')})`);
  for (const vm of i.ovf.systems) {
    lines.push(`virtual machine: ${vm.name}${vm.id !== vm.name ? ` (id ${vm.id})` : ''}`);
    lines.push(`    os: ${vm.osType ?? '?'}${vm.osId ? ` (OVF id ${vm.osId})` : ''}${vm.osDescription ? ` ${vm.osDescription}` : ''}`);
    lines.push(`    cpus: ${vm.cpus ?? '?'}`, `    memory: ${mib(vm.memory)}${vm.memory !== undefined ? ` (${vm.memory} bytes)` : ''}`, `    firmware: ${vm.firmware}`);
    for (const n of vm.nics) lines.push(`    nic: ${n.name ?? '?'} on ${n.network ?? '?'}${n.type ? ` (${n.type})` : ''}`);
    for (const c of vm.controllers) lines.push(`    controller ${c.instanceId}: ${c.kind}${c.subtype ? ` ${c.subtype}` : ''}`);
  }
  lines.push('disks:');
  for (const d of i.disks) {
    lines.push(`  ${d.index}: ${d.id} ${d.members.join(' + ') || '(missing)'}`);
    lines.push(`      capacity: ${mib(d.capacity)} (${d.capacity} bytes), format: ${d.format ?? '?'}${d.subformat ? ` (${d.subformat})` : ''}${d.compression ? `, compression: ${d.compression}` : ''}`);
    if (d.populatedSize !== undefined) lines.push(`      populated size: ${d.populatedSize} bytes`);
    if (d.controllerKind || d.unit !== undefined) lines.push(`      attached: ${d.system ?? '?'} ${d.controllerKind ?? '?'} controller ${d.controller ?? '?'} unit ${d.unit ?? '?'}`);
  }
  return `${lines.join('\n')}\n`;
}
