// The part of jsfive's API that models/weights/h5.ts uses (the package ships no type declarations).
declare module 'jsfive' {
  type Attributes = Record<string, unknown>;
  export class Dataset {
    readonly name: string;
    readonly shape: number[];
    /** numpy-style, e.g. '<f4'. */
    readonly dtype: string | unknown;
    readonly value: ArrayLike<number>;
    readonly attrs: Attributes;
  }
  export class Group {
    readonly name: string;
    readonly keys: string[];
    readonly attrs: Attributes;
    get(path: string): Group | Dataset | null;
  }
  export class File extends Group {
    constructor(buffer: ArrayBuffer, filename?: string);
  }
}
