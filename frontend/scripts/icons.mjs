// Draws the app icons (PNG, no dependencies): a violet square with three white sound bars.
// Run once after changing the design: `node scripts/icons.mjs` (the PNGs are committed).
import { mkdirSync, writeFileSync } from "node:fs";
import { deflateSync } from "node:zlib";

const CRC = new Uint32Array(256).map((_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
const crc32 = (buf) => {
  let c = 0xffffffff;
  for (const b of buf) c = CRC[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
};
const chunk = (type, data) => {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, "ascii");
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
};

function icon(size, { maskable }) {
  const raw = Buffer.alloc((size * 4 + 1) * size);
  const radius = maskable ? 0 : size * 0.2;
  const bars = [
    [0.3, 0.42],
    [0.47, 0.68],
    [0.64, 0.5],
  ];
  const barW = size * 0.1;
  for (let y = 0; y < size; y++) {
    raw[y * (size * 4 + 1)] = 0;
    for (let x = 0; x < size; x++) {
      const i = y * (size * 4 + 1) + 1 + x * 4;
      const dx = Math.max(radius - x, 0, x - (size - 1 - radius));
      const dy = Math.max(radius - y, 0, y - (size - 1 - radius));
      const inside = radius === 0 || dx * dx + dy * dy <= radius * radius;
      let [r, g, b, a] = inside ? [76, 29, 149, 255] : [0, 0, 0, 0];
      for (const [cx, h] of bars) {
        const left = size * cx - barW / 2;
        const top = size * (0.5 - h / 2);
        if (x >= left && x < left + barW && y >= top && y < top + size * h) [r, g, b] = [255, 255, 255];
      }
      raw.set([r, g, b, a], i);
    }
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header.set([8, 6, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", header),
    chunk("IDAT", deflateSync(raw, { level: 9 })),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

const dir = new URL("../public/icons/", import.meta.url);
mkdirSync(dir, { recursive: true });
writeFileSync(new URL("icon-192.png", dir), icon(192, { maskable: false }));
writeFileSync(new URL("icon-512.png", dir), icon(512, { maskable: false }));
writeFileSync(new URL("maskable-512.png", dir), icon(512, { maskable: true }));
writeFileSync(
  new URL("icon.svg", dir),
  `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100"><rect width="100" height="100" rx="20" fill="#4c1d95"/>` +
    `<g fill="#fff"><rect x="25" y="29" width="10" height="42"/><rect x="42" y="16" width="10" height="68"/><rect x="59" y="25" width="10" height="50"/></g></svg>\n`,
);
