/** A logical volume as a view: its segments map LV bytes onto one or more PVs, linearly or striped. */
import { checkRange, type BlockView } from '../../view.js';

export interface MappedSegment {
  /** Byte range of the LV this segment covers. */
  start: number;
  length: number;
  /** Where each stripe begins on its PV (bytes); one stripe is a linear segment. */
  stripes: { pv: BlockView; offset: number }[];
  /** Bytes per stripe chunk (striped segments only). */
  stripeSize: number;
}

export class LvView implements BlockView {
  constructor(
    readonly name: string,
    readonly size: number,
    private readonly segments: readonly MappedSegment[],
  ) {}

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRange(this, offset, length);
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const pos = offset + done;
      const seg = this.segments.find((s) => pos >= s.start && pos < s.start + s.length);
      if (!seg) {
        // A hole in the segment map reads as zeros, as device-mapper's "error"-free gaps never occur in valid metadata.
        const next = this.segments.filter((s) => s.start > pos).reduce((m, s) => Math.min(m, s.start), offset + length);
        done += next - pos;
        continue;
      }
      const o = pos - seg.start;
      let pvOffset: number;
      let run = seg.start + seg.length - pos;
      let pv: BlockView;
      if (seg.stripes.length === 1) {
        pv = seg.stripes[0].pv;
        pvOffset = seg.stripes[0].offset + o;
      } else {
        const chunk = seg.stripeSize;
        const index = Math.floor(o / chunk);
        const stripe = seg.stripes[index % seg.stripes.length];
        pv = stripe.pv;
        pvOffset = stripe.offset + Math.floor(index / seg.stripes.length) * chunk + (o % chunk);
        run = Math.min(run, chunk - (o % chunk));
      }
      const n = Math.min(run, length - done);
      out.set(await pv.read(pvOffset, n), done);
      done += n;
    }
    return out;
  }
}
