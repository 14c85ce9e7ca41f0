import type { ChatImage, ChatMessage, ChatRequest } from "../core/chat.js";
import type { RequestContext } from "../core/context.js";
import { InvalidRequestError } from "../core/errors.js";
import type { ImageFetcher } from "../core/imageFetch.js";
import { authorizeModel } from "../gateway/authorize.js";

/**
 * Images at the HTTP edge, for every API: base64 or a `data:` URI, checked here so the engine only ever sees a
 * known image type within the limits. The type comes from the bytes (the declared one may lie). An http(s) URL is
 * fetching, a request leaving the machine on the client's behalf (egress): the decoders keep it as `{ url }`, and
 * `resolveImages` (after decoding, before the gateway) has it fetched only when the owner allows its host
 * (FREEHOLD_IMAGE_FETCH); otherwise it is a 400.
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

/** An image named by http(s) URL, until resolveImages fetches it; `field` names it for errors. */
export interface ImageUrl {
  url: string;
  field: string;
}

/** An image as a decoder leaves it: checked bytes, or a URL still to fetch. */
export type PendingImage = ChatImage | ImageUrl;
export type PendingMessage = Omit<ChatMessage, "images"> & { images?: PendingImage[] };
/** A decoded chat request whose images may still be URLs. */
export type PendingChatRequest = Omit<ChatRequest, "messages"> & { messages: PendingMessage[] };

const notImage = "is not a PNG, JPEG, GIF, WebP or BMP image (its bytes say otherwise, whatever its declared type)";

/** The image type its bytes say, or undefined when they are none of the accepted ones. */
function sniff(bytes: Buffer): string | undefined {
  return signatures.find((signature) => signature.test(bytes))?.mediaType;
}

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
  const mediaType = sniff(Buffer.from(compact, "base64"));
  if (!mediaType) throw invalid(notImage, field);
  return { mediaType, data: compact };
}

/**
 * An image URL as OpenAI's `image_url.url` takes it: a `data:image/...;base64,` URI, decoded here, or an http(s)
 * URL, kept for resolveImages.
 */
export function decodeImageUrl(url: string, field: string): PendingImage {
  if (/^https?:/i.test(url)) return { url, field };
  const match = /^data:([\w.+-]+\/[\w.+-]+)?((?:;[\w-]+=[^;,]*)*);base64,(.*)$/is.exec(url);
  if (!match) throw invalid("must be a data: URI with base64 data (data:image/png;base64,...)", field);
  return decodeBase64Image(match[3]!, field);
}

/** Refuses a request whose messages carry more images than allowed. */
export function checkImageCount(messages: { images?: readonly unknown[] }[], field = "messages"): void {
  const count = messages.reduce((sum, message) => sum + (message.images?.length ?? 0), 0);
  if (count > MAX_IMAGES)
    throw new InvalidRequestError(
      `${field}: ${count} images; at most ${MAX_IMAGES} per request`,
      field,
      "too_many_images",
    );
}

/**
 * Fetches the request's image URLs (all at once; the first failure cancels the rest) and checks the bytes as inline
 * ones are. Without a fetcher (the default: no FREEHOLD_IMAGE_FETCH) a URL is a 400 that says how to send it.
 */
export async function resolveImages(
  request: PendingChatRequest,
  fetcher: ImageFetcher | undefined,
  context?: RequestContext,
  signal?: AbortSignal,
): Promise<ChatRequest> {
  if (!request.messages.some((message) => message.images?.some((image) => "url" in image)))
    return request as ChatRequest;
  // A fetch is a request made on the key's behalf: a key that may not use the model gets its 403 first (the
  // gateway would refuse it anyway, after the fetch).
  if (context) authorizeModel(context, request.model);
  const cancel = new AbortController();
  const both = signal ? AbortSignal.any([signal, cancel.signal]) : cancel.signal;
  const fetchOne = async (image: PendingImage): Promise<ChatImage> => {
    if (!("url" in image)) return image;
    if (!fetcher)
      throw new InvalidRequestError(
        `${image.field}: images by http(s) URL are not fetched by this server (the owner lists the hosts it may fetch from in FREEHOLD_IMAGE_FETCH; none are, or the server is offline); send the image inline as a data: URI (data:image/png;base64,...)`,
        image.field,
        "image_url_not_allowed",
      );
    const bytes = await fetcher.fetchImage(image.url, image.field, { maxBytes: MAX_IMAGE_BYTES, signal: both });
    const mediaType = sniff(bytes);
    if (!mediaType)
      throw new InvalidRequestError(`${image.field}: the fetched file ${notImage}`, image.field, "image_fetch_failed");
    return { mediaType, data: bytes.toString("base64") };
  };
  try {
    const messages = await Promise.all(
      request.messages.map(async (message) =>
        message.images ? { ...message, images: await Promise.all(message.images.map(fetchOne)) } : message,
      ),
    );
    return { ...request, messages } as ChatRequest;
  } finally {
    cancel.abort();
  }
}
