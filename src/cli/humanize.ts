/** Sizes as people read them, in decimal units like Ollama and disk vendors: "512 B", "1.2 MB", "170 MB", "4.7 GB". */
export function formatSize(bytes: number): string {
  const units = ["B", "KB", "MB", "GB", "TB", "PB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  if (unit === 0) return `${bytes} B`;
  // Round first, so 9.96 MB shows as "10 MB" rather than "10.0 MB".
  const rounded = Math.round(value * 10) / 10;
  return `${rounded < 10 ? rounded.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

const spans: [number, string][] = [
  [365 * 24 * 3600, "year"],
  [30 * 24 * 3600, "month"],
  [7 * 24 * 3600, "week"],
  [24 * 3600, "day"],
  [3600, "hour"],
  [60, "minute"],
  [1, "second"],
];

/** "just now", "2 minutes ago", "1 day ago", "3 weeks ago". A time in the future (clock skew) is "just now". */
export function formatRelativeTime(date: Date, now: Date = new Date()): string {
  const seconds = Math.floor((now.getTime() - date.getTime()) / 1000);
  if (seconds < 5) return "just now";
  for (const [length, unit] of spans) {
    const count = Math.floor(seconds / length);
    if (count >= 1) return `${count} ${unit}${count === 1 ? "" : "s"} ago`;
  }
  return "just now";
}
