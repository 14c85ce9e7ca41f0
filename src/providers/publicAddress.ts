import { isIP } from "node:net";

/**
 * Is an IP address one a fetch on a client's behalf may connect to? Only public unicast addresses are: loopback,
 * private (RFC 1918, CGNAT, ULA), link-local (cloud metadata at 169.254.169.254), unspecified, multicast, broadcast,
 * reserved and documentation ranges are refused, and so are IPv6 forms that carry an IPv4 address (mapped,
 * compatible, NAT64, 6to4) when the IPv4 address inside is. IPv6 outside global unicast (2000::/3) is refused
 * outright: an allow-list, so a range this file forgot is closed rather than open.
 */

/** IPv4 ranges that are not the public internet: [first octets as a 32-bit number, prefix length, why]. */
const ipv4Ranges: [string, number, string][] = [
  ["0.0.0.0", 8, "unspecified ('this network')"],
  ["10.0.0.0", 8, "private (RFC 1918)"],
  ["100.64.0.0", 10, "shared address space (CGNAT)"],
  ["127.0.0.0", 8, "loopback"],
  ["169.254.0.0", 16, "link-local (cloud metadata)"],
  ["172.16.0.0", 12, "private (RFC 1918)"],
  ["192.0.0.0", 24, "IETF protocol assignments"],
  ["192.0.2.0", 24, "documentation"],
  ["192.88.99.0", 24, "6to4 relay"],
  ["192.168.0.0", 16, "private (RFC 1918)"],
  ["198.18.0.0", 15, "benchmarking"],
  ["198.51.100.0", 24, "documentation"],
  ["203.0.113.0", 24, "documentation"],
  ["224.0.0.0", 4, "multicast"],
  ["240.0.0.0", 4, "reserved or broadcast"],
];

function ipv4Number(address: string): number {
  return address.split(".").reduce((value, octet) => value * 256 + Number(octet), 0);
}

function ipv4Problem(address: string): string | undefined {
  const value = ipv4Number(address);
  for (const [start, bits, why] of ipv4Ranges) {
    const size = 2 ** (32 - bits);
    if (Math.floor(value / size) === Math.floor(ipv4Number(start) / size)) return why;
  }
  return undefined;
}

/** An IPv6 address as its 8 groups (a trailing dotted IPv4 part and `::` expanded); undefined if it is not one. */
export function ipv6Groups(address: string): number[] | undefined {
  let text = address.replace(/^\[|\]$/g, "").replace(/%.*$/, "");
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    if (isIP(dotted[1]!) !== 4) return undefined;
    const value = ipv4Number(dotted[1]!);
    text = `${text.slice(0, dotted.index)}${Math.floor(value / 65536).toString(16)}:${(value % 65536).toString(16)}`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const part = (half: string) => (half === "" ? [] : half.split(":").map((group) => Number.parseInt(group, 16)));
  const head = part(halves[0]!);
  const tail = halves.length === 2 ? part(halves[1]!) : [];
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups = [...head, ...Array.from({ length: halves.length === 2 ? missing : 0 }, () => 0), ...tail];
  return groups.every((group) => Number.isInteger(group) && group >= 0 && group <= 0xffff) ? groups : undefined;
}

function embeddedIpv4(high: number, low: number): string {
  return [high >> 8, high & 0xff, low >> 8, low & 0xff].join(".");
}

function ipv6Problem(address: string): string | undefined {
  const g = ipv6Groups(address);
  if (!g) return "not an IP address";
  const zeros = (from: number, to: number) => g.slice(from, to).every((group) => group === 0);
  if (zeros(0, 8)) return "unspecified";
  if (zeros(0, 7) && g[7] === 1) return "loopback";
  // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible): the IPv4 address inside is what is reached.
  if (zeros(0, 5) && (g[5] === 0xffff || g[5] === 0)) return inner(embeddedIpv4(g[6]!, g[7]!), "IPv4-mapped");
  // 64:ff9b::/96 (NAT64): a translator reaches the IPv4 address inside.
  if (g[0] === 0x64 && g[1] === 0xff9b && zeros(2, 6)) return inner(embeddedIpv4(g[6]!, g[7]!), "NAT64");
  if (g[0] === 0x64 && g[1] === 0xff9b) return "local-use NAT64";
  // 2002::/16 (6to4): the IPv4 address is groups 1 and 2.
  if (g[0] === 0x2002) return inner(embeddedIpv4(g[1]!, g[2]!), "6to4");
  if (g[0] === 0x2001 && g[1] === 0) return "Teredo (an IPv4 address inside)";
  if (g[0] === 0x2001 && g[1] === 0xdb8) return "documentation";
  if (g[0] === 0x2001 && g[1]! < 0x200) return "IETF protocol assignments";
  if ((g[0]! & 0xfe00) === 0xfc00) return "unique local (private, fc00::/7)";
  if ((g[0]! & 0xffc0) === 0xfe80) return "link-local";
  if ((g[0]! & 0xff00) === 0xff00) return "multicast";
  if ((g[0]! & 0xe000) !== 0x2000) return "not global unicast";
  return undefined;
}

function inner(ipv4: string, form: string): string | undefined {
  const problem = ipv4Problem(ipv4);
  return problem ? `${form} ${problem}` : undefined;
}

/** Why `address` is not a public unicast address, or undefined when it is one. */
export function addressProblem(address: string): string | undefined {
  const version = isIP(address.replace(/^\[|\]$/g, ""));
  if (version === 4) return ipv4Problem(address);
  if (version === 6) return ipv6Problem(address);
  return "not an IP address";
}
