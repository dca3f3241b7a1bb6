/**
 * Watching mounted files for changes, Kubernetes-style: used for static key files and for the
 * config file itself (a ConfigMap update swaps the same `..data` symlink as a Secret).
 */
import { statSync, watch } from 'node:fs'
import type { FSWatcher, Stats } from 'node:fs'
import { stat } from 'node:fs/promises'
import { dirname } from 'node:path'

/** Tuning for {@link watchFiles}; the defaults suit Kubernetes Secret/ConfigMap mounts. */
export interface WatchOptions {
  /** ms; events within this window after the first one are coalesced into one call. Default 200. */
  readonly debounceMs?: number
  /** ms between stat() polls, the safety net for filesystems without change events. Default 10 000. */
  readonly pollIntervalMs?: number
}

export interface FileWatcher {
  /** Stop watching and polling; `onChange` is never called after this returns. */
  close(): void
}

/**
 * Call `onChange` (debounced) when any of `files` may have changed. It only says "look
 * again": the caller reloads and compares contents (key files: `loadStaticKeys`' digest; the
 * config file: its text).
 *
 * Kubernetes mounts a Secret/ConfigMap as `key.pem -> ..data/key.pem` with
 * `..data -> ..<timestamp>/`, and updates it by renaming a new `..data` symlink over the old one
 * and deleting the old directory. A watch on the FILE follows the old inode and goes quiet after
 * the first update, so each distinct parent DIRECTORY is watched instead (the rename of `..data`
 * happens there). Events are not filtered by name: other files in the directory only cost a
 * reload that the digest turns into a no-op, while a name filter would miss any other symlink
 * scheme. A poll of each file's resolved stat (ino, size, mtime) backs this up for filesystems
 * that send no events (NFS, some FUSE and overlay mounts) and for directories that do not exist
 * yet (their watch is retried on every poll).
 *
 * `onChange` runs from a timer: it must not throw (start the reload and handle its errors).
 *
 * @example
 * ```ts
 * const watcher = watchFiles(['/etc/jwt-sidecar/sidecar.yaml'], () => void reload())
 * // on shutdown:
 * watcher.close()
 * ```
 */
export function watchFiles(paths: readonly string[], onChange: () => void, options: WatchOptions = {}): FileWatcher {
  const debounceMs = options.debounceMs ?? 200
  const pollIntervalMs = options.pollIntervalMs ?? 10_000
  if (!(Number.isFinite(debounceMs) && debounceMs >= 0)) throw new RangeError(`debounceMs must be a finite number >= 0, got ${debounceMs}`)
  if (!(Number.isFinite(pollIntervalMs) && pollIntervalMs > 0)) throw new RangeError(`pollIntervalMs must be a finite number > 0, got ${pollIntervalMs}`)

  const files = [...new Set(paths)]
  const dirs = [...new Set(files.map((f) => dirname(f)))]
  const watchers = new Map<string, FSWatcher>()
  let closed = false
  let pending: NodeJS.Timeout | undefined
  let polling = false
  // Taken synchronously so a change right after this function returns is still a difference.
  let seen = files.map(statSignatureSync)

  const fire = async (): Promise<void> => {
    // Re-read the signatures BEFORE the caller reloads: a change after this point differs
    // from them and is caught by the next poll; one before it is in the reload.
    const now = await statSignatures(files)
    if (closed) return
    seen = now
    onChange()
  }
  const schedule = (): void => {
    // Coalesce, but never postpone: a busy directory (a log file next to the key) must not
    // starve the reload, as a timer reset on every event would.
    if (closed || pending !== undefined) return
    pending = setTimeout(() => {
      pending = undefined
      void fire()
    }, debounceMs)
    pending.unref()
  }
  const watchDir = (dir: string): void => {
    if (closed || watchers.has(dir)) return
    let w: FSWatcher
    try {
      // persistent: false is the watcher's unref(): it never keeps the process alive.
      w = watch(dir, { persistent: false }, schedule)
    } catch {
      return // ENOENT, EACCES, ENOTDIR...: the poll covers it and retries the watch
    }
    w.on('error', () => {
      // The directory went away or inotify gave up: drop the watch (the next poll retries it)
      // and look at the files, which may have changed with it.
      w.close()
      if (watchers.get(dir) === w) watchers.delete(dir)
      schedule()
    })
    watchers.set(dir, w)
  }
  const poll = async (): Promise<void> => {
    if (polling || closed) return
    polling = true
    try {
      for (const dir of dirs) watchDir(dir)
      const now = await statSignatures(files)
      if (closed) return
      if (now.some((s, i) => s !== seen[i])) {
        seen = now
        schedule()
      }
    } finally {
      polling = false
    }
  }

  for (const dir of dirs) watchDir(dir)
  const interval = files.length === 0 ? undefined : setInterval(() => void poll(), pollIntervalMs)
  interval?.unref()

  return {
    close(): void {
      closed = true
      if (pending !== undefined) clearTimeout(pending)
      pending = undefined
      if (interval !== undefined) clearInterval(interval)
      for (const w of watchers.values()) w.close()
      watchers.clear()
    },
  }
}

/** What "the file changed" means for the poll: the resolved file's identity, size and mtime. */
function signatureOf(st: Stats): string {
  // ino: a Kubernetes `..data` swap points at a new file even when size and mtime match.
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`
}

function errorSignature(err: unknown): string {
  // A missing file is a state too: its appearance is a change.
  return `error:${(err as NodeJS.ErrnoException).code ?? 'unknown'}`
}

function statSignatureSync(file: string): string {
  try {
    return signatureOf(statSync(file))
  } catch (err) {
    return errorSignature(err)
  }
}

async function statSignatures(files: readonly string[]): Promise<string[]> {
  return Promise.all(
    files.map(async (f) => {
      try {
        return signatureOf(await stat(f))
      } catch (err) {
        return errorSignature(err)
      }
    }),
  )
}
