import { closeSync, fstatSync, openSync, readSync } from "node:fs";

/** Random-access bytes: a file or a buffer. The reader never asks for more than the source has. */
export interface ByteSource {
  readonly size: number;
  read(offset: number, length: number): Uint8Array;
  close(): void;
}

export class BufferSource implements ByteSource {
  readonly size: number;
  constructor(private readonly bytes: Uint8Array) {
    this.size = bytes.length;
  }
  read(offset: number, length: number): Uint8Array {
    return this.bytes.subarray(offset, offset + length);
  }
  close(): void {}
}

export class FileSource implements ByteSource {
  readonly size: number;
  private readonly fd: number;
  constructor(path: string) {
    this.fd = openSync(path, "r");
    try {
      this.size = fstatSync(this.fd).size;
    } catch (error) {
      closeSync(this.fd);
      throw error;
    }
  }
  read(offset: number, length: number): Uint8Array {
    const buffer = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, buffer, done, length - done, offset + done);
      if (n === 0) break;
      done += n;
    }
    return buffer.subarray(0, done);
  }
  close(): void {
    closeSync(this.fd);
  }
}
