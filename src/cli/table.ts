import Table from "cli-table3";

const noBorder = {
  top: "",
  "top-mid": "",
  "top-left": "",
  "top-right": "",
  bottom: "",
  "bottom-mid": "",
  "bottom-left": "",
  "bottom-right": "",
  left: "",
  "left-mid": "",
  mid: "",
  "mid-mid": "",
  right: "",
  "right-mid": "",
  middle: "   ",
};

/**
 * Lays out rows under a header in plain aligned columns, without borders or colours, so output piped into other
 * programs is clean text. Returns the lines.
 */
export function formatTable(head: string[], rows: string[][]): string[] {
  const table = new Table({
    head,
    chars: noBorder,
    style: { head: [], border: [], "padding-left": 0, "padding-right": 0 },
  });
  table.push(...rows);
  return table
    .toString()
    .split("\n")
    .map((line) => line.trimEnd());
}
