/** The shape of a volume group's metadata tree (lib/format_text/import_vsn1.c), checked with zod before use. */
import { z } from 'zod';

const count = z.number().int().nonnegative();

export const segmentSchema = z
  .object({
    start_extent: count,
    extent_count: count.min(1),
    type: z.string(),
    stripe_count: count.optional(),
    stripe_size: count.optional(),
    stripes: z.array(z.union([z.string(), count])).optional(),
  })
  .passthrough();

export const lvSchema = z
  .object({
    id: z.string(),
    status: z.array(z.string()),
    segment_count: count.min(1),
  })
  .passthrough();

export const pvSchema = z
  .object({
    id: z.string(),
    dev_size: count.optional(),
    pe_start: count,
    pe_count: count,
  })
  .passthrough();

export const vgSchema = z
  .object({
    id: z.string(),
    seqno: count,
    extent_size: count.min(1),
    status: z.array(z.string()).optional(),
    physical_volumes: z.record(z.string(), pvSchema),
    logical_volumes: z.record(z.string(), lvSchema).optional(),
  })
  .passthrough();

export type VgMetadata = z.infer<typeof vgSchema>;
export type LvMetadata = z.infer<typeof lvSchema>;
export type SegmentMetadata = z.infer<typeof segmentSchema>;
