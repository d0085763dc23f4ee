/**
 * guestkit command line. Command modules are imported lazily so `--version` and `--help` start
 * fast (no zod, no format code loaded).
 */
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { reportError, setDebug, EXIT_USAGE } from './errors.js';
import { registerPipelineCommand } from './pipeline.js';
import { formatsHelp } from './formats-help.js';
import type { FormatDriver } from '../formats/types.js';

/** Our package.json, found upwards from this module (it runs from src/, dist/ or a bundle chunk). */
function packageVersion(): string {
  let dir = new URL('.', import.meta.url);
  for (let i = 0; i < 5; i++) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as { name?: string; version: string };
      if (pkg.name === 'guestkit') return pkg.version;
    } catch {
      // not here: go up
    }
    dir = new URL('..', dir);
  }
  return 'unknown';
}
const pkg = { version: packageVersion() };

/** True when the command line asks for help, which then lists the registry's formats. */
function wantsHelp(args: string[]): boolean {
  return args.length === 0 || args[0] === 'help' || args.includes('--help') || args.includes('-h');
}

/** `formats`: the registered drivers, listed in the help of the commands that choose a format. */
export function buildProgram(formats?: readonly FormatDriver[]): Command {
  const program = new Command();
  program
    .name('guestkit')
    .description('Detect, inspect and convert virtual-machine disk images without QEMU (formats: see the table below).')
    .version(pkg.version, '-V, --version')
    .option('--debug', 'print stack traces with errors')
    .showSuggestionAfterError()
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(str) })
    .hook('preAction', (cmd) => setDebug(Boolean(cmd.optsWithGlobals().debug)));
  if (formats) program.addHelpText('after', formatsHelp(formats));

  program
    .command('detect')
    .description('name the format of an image from its content (never its extension)')
    .argument('[image]', 'image file')
    .option('--image <file>', 'image file (alternative to the positional argument)')
    .option('--json', 'print a JSON object')
    .option('--output <fmt>', 'human or json', 'human')
    .addHelpText('after', '\nExamples:\n  guestkit detect disk.vmdk\n  guestkit detect --image disk.img --json')
    .action(async (image, opts) => (await import('./detect.js')).run(image ?? opts.image, opts));

  program
    .command('info')
    .description('show what an image is: format, sizes, backing file, format-specific fields')
    .argument('[image]', 'image file')
    .option('--image <file>', 'image file (alternative to the positional argument)')
    .option('-f, --format <fmt>', 'image format (detected when omitted)')
    .option('--json', 'same as --output json')
    .option('--output <fmt>', 'human or json', 'human')
    .option('--backing-chain', 'show every image of the backing chain, top first')
    .option('--disk <n|name>', 'the disk of an OVA to read: 0-based index, OVF disk id or file name')
    .option('-U, --force-share', 'accepted for qemu-img compatibility: guestkit never locks images (an image a running VM writes may read inconsistent)')
    .option('--allow-outside', 'follow backing/extent paths outside the image folder')
    .addHelpText('after', '\nExamples:\n  guestkit info disk.qcow2\n  guestkit info --backing-chain --output json overlay.qcow2\n  guestkit info --output json disk.vhd')
    .action(async (image, opts) => (await import('./info.js')).run(image ?? opts.image, opts));

  program
    .command('convert')
    .description('convert an image to another format (backing chains are flattened unless -B names the backing image to keep)')
    .argument('[source]', "source image, or '-' for standard input")
    .argument('[output]', "output image, or '-' for standard output")
    .option('--source <file>', 'source image (alternative to the positional argument)')
    .option('--output <file>', 'output image (alternative to the positional argument)')
    .option('-f, --source-format <fmt>', 'source format (detected when omitted)')
    .option('-O, --format <fmt>', "output format (from the output's extension when omitted, else raw)")
    .option('-c, --compress', 'compress the output (the formats marked -c below)')
    .option('--compress-output', 'same as -c')
    .option('-o, --options <k=v,...>', 'format options, e.g. cluster_size=64k,compat=0.10')
    .option('-p', 'show a progress bar on stderr (same as --progress bar)')
    .option('-q, --quiet', 'print nothing but errors (no progress, no summary, no --json result)')
    .option('-W', 'accepted for qemu-img compatibility (out-of-order writes): the engine already keeps writes in flight, and files stay laid out in offset order')
    .option('-U, --force-share', 'accepted for qemu-img compatibility: guestkit never locks images (an image a running VM writes may read inconsistent)')
    .option('--progress <mode>', 'bar: a progress bar on stderr; json: JSON lines {done, total, bytesPerSecond} on stderr')
    .option('-S, --sparse-size <size>', 'minimum run of zeros left as a hole (0 writes everything)', '4k')
    .option('-B, --backing <file>', 'make the output an overlay of this image (named relative to the output): only what differs from it is written')
    .option('-F, --backing-format <fmt>', 'format of the -B image (detected when omitted)')
    .option('-n, --no-create', 'write into the existing output image instead of creating it (raw: in place; other formats: rewritten with their own layout)')
    .option('--target-is-zero', 'with -n: the output already reads as zeros, so zero runs are not written')
    .option('-m, --parallel <n>', 'parallel jobs: compressing, and inflating compressed qcow2 (main thread included)')
    .option('--force', 'overwrite an existing output')
    .option('-t, --cache <mode>', "output cache mode: writeback (default: fsync before the rename) or unsafe (no fsync, as qemu-img convert's default)")
    .option('--allow-outside', 'follow backing/extent paths outside the source image folder')
    .option('--disk <n|name>', 'the disk of an OVA to read: 0-based index, OVF disk id or file name')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  guestkit convert disk.vmdk disk.qcow2\n  guestkit convert -O vpc -o subformat=fixed disk.qcow2 disk.vhd\n  guestkit convert --source disk.vdi --output disk.raw --format raw\n  guestkit convert -O qcow2 -B base.qcow2 -F qcow2 vm.vmdk overlay.qcow2\n  guestkit convert -n --target-is-zero -O raw disk.qcow2 /dev/vg0/disk',
    )
    .addHelpText('after', formats ? formatsHelp(formats) : '')
    .action(async (source, output, opts) => (await import('./convert.js')).run(source ?? opts.source, output ?? opts.output, opts));

  program
    .command('map')
    .description('print the allocation map of an image, as qemu-img map does')
    .argument('[image]', 'image file')
    .option('--image <file>', 'image file (alternative to the positional argument)')
    .option('-f, --format <fmt>', 'image format (detected when omitted)')
    .option('--json', 'same as --output json')
    .option('--output <fmt>', 'human or json', 'human')
    .option('--allow-outside', 'follow backing/extent paths outside the image folder')
    .option('-U, --force-share', 'accepted for qemu-img compatibility: guestkit never locks images')
    .option('--disk <n|name>', 'the disk of an OVA to read: 0-based index, OVF disk id or file name')
    .addHelpText('after', '\nExamples:\n  guestkit map disk.qcow2\n  guestkit map --output json overlay.qcow2')
    .action(async (image, opts) => (await import('./map.js')).run(image ?? opts.image, opts));

  program
    .command('check')
    .description('check the metadata of an image for corruption and leaks (exit 0 clean, 1 check failed, 2 corrupt, 3 leaks)')
    .argument('[image]', 'image file')
    .option('--image <file>', 'image file (alternative to the positional argument)')
    .option('-f, --format <fmt>', 'image format (detected when omitted)')
    .option('--json', 'same as --output json')
    .option('--output <fmt>', 'human or json', 'human')
    .option('-q, --quiet', 'print nothing in human mode; use the exit code')
    .option('-U, --force-share', 'accepted for qemu-img compatibility: guestkit never locks images')
    .addHelpText('after', '\nExamples:\n  guestkit check disk.qcow2\n  guestkit check --output json disk.vdi')
    .action(async (image, opts) => (await import('./check.js')).run(image ?? opts.image, opts));

  program
    .command('compare')
    .description('compare the content of two images, across formats (exit 0 identical, 1 different, 2 error)')
    .argument('[a]', 'first image')
    .argument('[b]', 'second image')
    .option('-f, --format-a <fmt>', 'format of the first image')
    .option('-F, --format-b <fmt>', 'format of the second image')
    .option('-s, --strict', 'images of different sizes are different')
    .option('-p, --progress', 'show a progress bar on stderr')
    .option('-q, --quiet', 'print nothing; use the exit code')
    .option('-U, --force-share', 'accepted for qemu-img compatibility: guestkit never locks images')
    .option('--allow-outside', 'follow backing/extent paths outside the image folders')
    .option('--disk <n|name>', 'the disk of an OVA to read: 0-based index, OVF disk id or file name')
    .addHelpText('after', '\nExamples:\n  guestkit compare disk.vmdk disk.qcow2\n  guestkit compare -s a.raw b.vhd')
    .action(async (a, b, opts) => {
      errorExitCode = 2;
      await (await import('./compare.js')).run(a, b, opts);
    });

  program
    .command('create')
    .description('create an empty image, or an overlay on a backing image')
    .argument('[file]', 'image to create')
    .argument('[size]', 'virtual size with optional K, M, G, T suffix (taken from the backing image when omitted)')
    .option('-f, --format <fmt>', 'image format (default: raw)')
    .option('-o, --options <k=v,...>', 'format options, e.g. cluster_size=64k or subformat=fixed')
    .option('-b, --backing <file>', 'backing image (relative to the new image)')
    .option('-F, --backing-format <fmt>', 'format of the backing image')
    .option('-q, --quiet', 'print nothing')
    .option('--force', 'overwrite an existing file')
    .addHelpText('after', '\nExamples:\n  guestkit create -f qcow2 disk.qcow2 20G\n  guestkit create -f qcow2 -b base.qcow2 -F qcow2 overlay.qcow2')
    .addHelpText('after', formats ? formatsHelp(formats) : '')
    .action(async (file, size, opts) => (await import('./create.js')).run(file, size, opts));

  program
    .command('measure')
    .description('how much space converting an image (or a new image of --size) to a format needs, as qemu-img measure')
    .argument('[source]', 'source image')
    .requiredOption('-O, --output-format <fmt>', 'output format')
    .option('-o, --options <k=v,...>', 'output format options')
    .option('-f, --source-format <fmt>', 'source format (detected when omitted)')
    .option('--size <size>', 'measure a new empty image of this size instead of a source')
    .option('--json', 'same as --output json')
    .option('--output <fmt>', 'human or json', 'human')
    .option('--allow-outside', 'follow backing/extent paths outside the image folder')
    .option('-U, --force-share', 'accepted for qemu-img compatibility: guestkit never locks images')
    .addHelpText('after', '\nExamples:\n  guestkit measure -O qcow2 disk.vmdk\n  guestkit measure -O vhd --size 20G --output json')
    .action(async (source, opts) => (await import('./measure.js')).run(source, opts));

  program
    .command('resize')
    .description('change the virtual size of an image in place, as qemu-img resize (the formats marked resize in --help)')
    .argument('[image]', 'image file')
    .argument('[size]', 'new size with optional K, M, G, T suffix; +SIZE grows by, -SIZE shrinks by')
    .option('-f, --format <fmt>', 'image format (detected when omitted)')
    .option('--shrink', 'allow the image to become smaller (data past the new end is lost)')
    .option('-q, --quiet', 'print nothing')
    .option('--allow-outside', "read a qcow2 backing image's size outside the image folder")
    // A negative size ("-1G") is an argument, not an option (qemu-img takes it out of argv before getopt).
    .allowUnknownOption()
    .addHelpText(
      'after',
      '\nExamples:\n  guestkit resize disk.qcow2 20G\n  guestkit resize disk.vhd +1G\n  guestkit resize -f raw --shrink disk.img -512M\n\nNothing is written to a backing file.',
    )
    .addHelpText('after', formats ? formatsHelp(formats) : '')
    .action(async (image, size, opts) => (await import('./resize.js')).run(image, size, opts));

  program
    .command('filesystems')
    .description('list the filesystems, partitions, block devices and LVM of a machine\'s disk images, as virt-filesystems does')
    .argument('<images...>', 'disk images of one machine: /dev/sda, /dev/sdb, … in this order')
    .option('--all', 'everything: filesystems (swap and unknown too), LVs, VGs, PVs, partitions, block devices')
    .option('--filesystems', 'filesystems (the default)')
    .option('--extra', 'filesystems including swap and unknown')
    .option('--partitions', 'partitions')
    .option('--block-devices', 'block devices')
    .option('--lvs, --logical-volumes', 'LVM logical volumes')
    .option('--vgs, --volume-groups', 'LVM volume groups')
    .option('--pvs, --physical-volumes', 'LVM physical volumes')
    .option('-l, --long', 'type, label, size, parent columns, with a title row')
    .option('--uuid', 'a UUID column (with --long)')
    .option('--no-title', 'no title row in --long mode')
    .option('--csv', 'comma-separated values')
    .option('-h, --human-readable', 'sizes as 1.0G, 512M')
    .option('-f, --format <fmt>', 'image format (detected when omitted)')
    .option('--json', 'same as --output json')
    .option('--output <fmt>', 'human or json (a list of {name, type, vfs, label, mbr, size, parent, uuid})', 'human')
    .option('--allow-outside', 'follow backing/extent paths outside the image folder')
    .addHelpText('after', '\nExamples:\n  guestkit filesystems disk.qcow2\n  guestkit filesystems --all --long --uuid disk1.vmdk disk2.vmdk\n  guestkit filesystems --all --output json disk.vhd')
    .action(async (images, opts) => (await import('./filesystems.js')).run(images, opts));

  const guestFileOptions = (c: Command): Command =>
    c
      .option('-m, --mount <dev[:mountpoint]>', 'mount this guest filesystem (repeatable, as guestfish -m); without it the lone filesystem is used', (v: string, prev: string[] = []) => [...prev, v])
      .option('-f, --format <fmt>', 'image format (detected when omitted)')
      .option('--allow-outside', 'follow backing/extent paths outside the image folder');
  guestFileOptions(
    program
      .command('ls')
      .description('list a directory inside a guest, as virt-ls does')
      .argument('<args...>', 'IMAGE... PATH')
      .option('-l, --long', 'long listing, as ls -l')
      .option('-R, --recursive', 'every path below PATH'),
  )
    .addHelpText('after', '\nExamples:\n  guestkit ls disk.qcow2 /etc\n  guestkit ls -lR -m /dev/sda1 disk.vmdk /boot')
    .action(async (args, opts) => (await import('./guest-files.js')).runLs(args, opts));
  guestFileOptions(program.command('cat').description('print a file inside a guest, as virt-cat does').argument('<args...>', 'IMAGE... PATH'))
    .addHelpText('after', '\nExamples:\n  guestkit cat disk.qcow2 /etc/os-release\n  guestkit cat -m /dev/sda2 -m /dev/sda1:/boot disk.vhd /boot/grub/grub.cfg')
    .action(async (args, opts) => (await import('./guest-files.js')).runCat(args, opts));
  guestFileOptions(
    program
      .command('copy-out')
      .description('copy a file or directory out of a guest into a host directory, as virt-copy-out does')
      .argument('<args...>', 'IMAGE... PATH DEST')
      .option('--force', 'overwrite existing host files (host symlinks are replaced, never followed)'),
  )
    .addHelpText('after', '\nExamples:\n  guestkit copy-out disk.qcow2 /etc ./out\n\nGuest symlinks are copied as symlinks; nothing is written outside DEST.')
    .action(async (args, opts) => (await import('./guest-files.js')).runCopyOut(args, opts));

  registerPipelineCommand(program);

  return program;
}

/** Exit code for a failure of the command that runs (compare uses 2, as qemu-img does). */
let errorExitCode: number | undefined;

export async function main(argv: string[]): Promise<number> {
  const formats = wantsHelp(argv.slice(2)) ? (await import('../formats/registry.js')).drivers() : undefined;
  const program = buildProgram(formats);
  try {
    await program.parseAsync(argv);
    return (process.exitCode as number | undefined) ?? 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version end here with code 0; parse errors were already printed.
      return e.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    const code = reportError(e);
    return errorExitCode ?? code;
  }
}
