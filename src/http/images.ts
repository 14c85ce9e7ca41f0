import type { ChatImage, ChatMessage } from "../core/chat.js";
import { InvalidRequestError } from "../core/errors.js";

/**
 * Images at the HTTP edge, for every API: base64 or a `data:` URI, checked here so the engine only ever sees a
 * known image type within the limits. The type comes from the bytes (the declared one may lie), and an http(s)
 * URL is refused: fetching it would be a request leaving the machine on the client's behalf (egress), which
 * freehold does not do for images.
 */

/** The largest image, decoded. */
export const MAX_IMAGE_BYTES = 8 * 1024 * 1024;
/** The most images one request may carry (all messages together). */
export const MAX_IMAGES = 16;

const signatures: { mediaType: string; test: (bytes: Buffer) => boolean }[] = [
  { mediaType: "image/png", test: (b) => b.length > 8 && b.readUInt32BE(0) === 0x89504e47 },
  { mediaType: "image/jpeg", test: (b) => b.length > 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff },
  { mediaType: "image/gif", test: (b) => b.length > 6 && b.toString("latin1", 0, 4) === "GIF8" },
  {
    mediaType: "image/webp",
    test: (b) => b.length > 12 && b.toString("latin1", 0, 4) === "RIFF" && b.toString("latin1", 8, 12) === "WEBP",
  },
  { mediaType: "image/bmp", test: (b) => b.length > 2 && b.toString("latin1", 0, 2) === "BM" },
];

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function invalid(message: string, field: string): InvalidRequestError {
  return new InvalidRequestError(`${field}: ${message}`, field, "invalid_image");
}

/** Decodes base64 image data (no `data:` prefix) and checks its type and size. */
export function decodeBase64Image(data: string, field: string): ChatImage {
  const compact = data.replace(/\s+/g, "");
  if (compact.length === 0) throw invalid("the image is empty", field);
  if (compact.length % 4 !== 0 || !BASE64.test(compact))
    throw invalid("is not valid base64 image data; send the image's bytes base64-encoded", field);
  // Checked before decoding: a huge string is refused without allocating its bytes.
  if ((compact.length / 4) * 3 > MAX_IMAGE_BYTES + 2)
    throw invalid(`the image is larger than ${MAX_IMAGE_BYTES / (1024 * 1024)} MiB; send a smaller one`, field);
  const bytes = Buffer.from(compact, "base64");
  const kind = signatures.find((signature) => signature.test(bytes));
  if (!kind)
    throw invalid(
      "is not a PNG, JPEG, GIF, WebP or BMP image (its bytes say otherwise, whatever its declared type)",
      field,
    );
  return { mediaType: kind.mediaType, data: compact };
}

/**
 * An image URL as OpenAI's `image_url.url` takes it: a `data:image/...;base64,` URI. An http(s) URL is a 400: the
 * client sends the bytes itself.
 */
export function decodeImageUrl(url: string, field: string): ChatImage {
  if (/^https?:/i.test(url))
    throw new InvalidRequestError(
      `${field}: images by http(s) URL are not fetched (that would be a request leaving this machine); send the image inline as a data: URI (data:image/png;base64,...)`,
      field,
      "image_url_not_allowed",
    );
  const match = /^data:([\w.+-]+\/[\w.+-]+)?((?:;[\w-]+=[^;,]*)*);base64,(.*)$/is.exec(url);
  if (!match) throw invalid("must be a data: URI with base64 data (data:image/png;base64,...)", field);
  return decodeBase64Image(match[3]!, field);
}

/** Refuses a request whose messages carry more images than allowed. */
export function checkImageCount(messages: Pick<ChatMessage, "images">[], field = "messages"): void {
  const count = messages.reduce((sum, message) => sum + (message.images?.length ?? 0), 0);
  if (count > MAX_IMAGES)
    throw new InvalidRequestError(
      `${field}: ${count} images; at most ${MAX_IMAGES} per request`,
      field,
      "too_many_images",
    );
}
