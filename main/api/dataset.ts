// The dataset part of the contract between the UI/CLI and the engine.

/** A class: a name and the folders its images come from (searched recursively). */
export interface ClassSource {
  name: string;
  folders: string[];
}

export type ProblemKind =
  | 'not-image' // the file is not an image sharp can read
  | 'corrupt' // an image whose data is damaged or truncated
  | 'empty' // zero bytes
  | 'unreadable' // permission denied or an I/O error
  | 'too-large' // more pixels than the limit
  | 'duplicate' // the same content (hash) in two classes: every copy is left out until one is excluded
  | 'duplicate-in-class' // the same content twice in one class: the first copy (path order) is used, the others are left out
  | 'missing' // a source image that was moved or deleted since it was imported
  | 'symlink-loop' // a folder reached again through symlinks (not followed)
  | 'link-outside'; // a link into another class's folder, or up to a folder that contains the class (not followed)

export interface FileProblem {
  file: string;
  kind: ProblemKind;
  /** A sentence a person can act on, naming what is wrong. */
  reason: string;
}

export interface DatasetImage {
  /** Absolute path. */
  file: string;
  className: string;
  /** Content hash (hex sha-256 of the file's bytes): the image's identity for splits and caches. */
  hash: string;
  width: number;
  height: number;
}

export interface DatasetReport {
  classes: { name: string; images: number; folders: string[] }[];
  images: DatasetImage[];
  problems: FileProblem[];
  warnings: string[];
  /** Files left out because the project excludes them. */
  excluded?: number;
}
