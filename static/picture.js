// Turn a visitor's file into what is sent: big photos are shrunk in the browser first, so a
// 12-megapixel phone photo goes up as a few hundred kilobytes. The server keeps its own limits.

export const MAX_SIDE = 2048; // pixels on the longer side; the network reads a 64x64 region anyway
const JPEG_QUALITY = 0.9;

async function decode(file) {
  try {
    // Upright as the server sees it: it applies the EXIF orientation too.
    return await createImageBitmap(file, { imageOrientation: 'from-image' });
  } catch (e) {
    if (!(e instanceof TypeError)) throw e;
    return createImageBitmap(file); // browsers that predate the 'from-image' option apply EXIF by default
  }
}

// -> {blob, width, height, originalWidth, originalHeight, resized}. width/height are the pixels
// of what is sent (the space of the server's boxes); null when the browser cannot decode the
// file, which then goes up as it is so that the server can say what is wrong with it.
export async function prepare(file, maxBytes) {
  let bitmap;
  try {
    bitmap = await decode(file);
  } catch (e) {
    return { blob: file, width: null, height: null, originalWidth: null, originalHeight: null, resized: false };
  }
  const { width, height } = bitmap;
  const scale = Math.min(1, MAX_SIDE / Math.max(width, height));
  if (scale === 1 && file.size <= maxBytes) {
    bitmap.close();
    return { blob: file, width, height, originalWidth: width, originalHeight: height, resized: false };
  }
  const w = Math.max(1, Math.round(width * scale));
  const h = Math.max(1, Math.round(height * scale));
  const canvas = document.createElement('canvas');
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext('2d');
  // JPEG has no transparency: lay the picture on white, as the server does with transparent PNGs.
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, w, h);
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(bitmap, 0, 0, w, h);
  bitmap.close();
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/jpeg', JPEG_QUALITY));
  if (!blob) return { blob: file, width, height, originalWidth: width, originalHeight: height, resized: false };
  return { blob, width: w, height: h, originalWidth: width, originalHeight: height, resized: true };
}
