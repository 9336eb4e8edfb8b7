// Decodes an image file into the square RGB pixels a backbone takes, with sharp.
//
// Resize rule: "contain" — the whole image is scaled to fit inside size×size, keeping its aspect
// ratio, and the rest is padded with white. Nothing of the object is cropped away (a centre crop
// would cut the ends off elongated cut-outs like the ones in photos5) and nothing is distorted; the
// padding is the same white that transparent areas are flattened onto, so a cut-out on a
// transparent background simply becomes the object on a white square.
import { stat } from 'node:fs/promises';
import sharp from 'sharp';
import { firstLine, fsErrorMessage } from './errors';

/** Inputs larger than this many pixels are refused (decompression bombs, absurd scans). */
export const DEFAULT_MAX_INPUT_PIXELS = 100_000_000;
/** How damaged an image may be and still be used; the dataset scan and every decode agree on it. */
export const FAIL_ON = 'truncated' as const;

const WHITE = { r: 255, g: 255, b: 255 };

export interface DecodeOptions {
  maxInputPixels?: number;
}


async function tooLargeMessage(file: string, limit: number): Promise<string> {
  try {
    const { width, height } = await sharp(file, { limitInputPixels: false }).metadata();
    if (width && height) {
      return `${file} is too large to decode: ${width}×${height} = ${width * height} pixels exceeds the limit of ${limit}`;
    }
  } catch {
    // fall through to the generic message
  }
  return `${file} is too large to decode: it exceeds the limit of ${limit} pixels`;
}

async function checkFile(file: string): Promise<void> {
  let info;
  try {
    info = await stat(file);
  } catch (err) {
    throw new Error(fsErrorMessage(err, file, { noun: 'image file' }));
  }
  if (info.isDirectory()) throw new Error(`Not an image file: ${file} is a directory`);
  if (info.size === 0) throw new Error(`Cannot decode image ${file}: the file is empty (0 bytes)`);
}

/**
 * Decodes `file` into size×size×3 RGB values in [0, 255] (row-major, channels last): EXIF
 * orientation applied, alpha flattened onto white, grayscale/CMYK/16-bit converted to 8-bit sRGB,
 * resized with the "contain" rule above. Multi-frame files (GIF, TIFF) use their first frame.
 * Throws an Error naming the file when it is missing, empty, not an image, corrupt or too large.
 */
export async function decodeImage(file: string, size: number, options: DecodeOptions = {}): Promise<Float32Array> {
  return Float32Array.from(await decodeImageRgb(file, size, options));
}

/** decodeImage's pixels as bytes (size×size×3, RGB, channels last), straight from sharp: no float copy. */
export async function decodeImageRgb(file: string, size: number, options: DecodeOptions = {}): Promise<Uint8Array> {
  if (!Number.isInteger(size) || size < 1) throw new Error(`decodeImage: size must be a positive integer, got ${size}`);
  const limit = options.maxInputPixels ?? DEFAULT_MAX_INPUT_PIXELS;
  await checkFile(file);
  let data: Buffer;
  let channels: number;
  try {
    const out = await sharp(file, { limitInputPixels: limit, failOn: FAIL_ON, autoOrient: true })
      .flatten({ background: WHITE })
      .toColourspace('srgb')
      .resize(size, size, { fit: 'contain', background: WHITE })
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    data = out.data;
    channels = out.info.channels;
  } catch (err) {
    const message = firstLine(err);
    if (/pixel limit/i.test(message)) throw new Error(await tooLargeMessage(file, limit));
    if (/unsupported image format/i.test(message)) throw new Error(`Cannot decode image ${file}: not an image (unsupported or unrecognised format)`);
    throw new Error(`Cannot decode image ${file}: corrupt or truncated image data (${message})`);
  }
  if (channels !== 3 || data.length !== size * size * 3) {
    throw new Error(`Cannot decode image ${file}: got ${channels} channels / ${data.length} bytes instead of RGB ${size}×${size}`);
  }
  return data;
}
