/**
 * JSON objects from token segments, strictly. RFC 7519 §4 lets a parser take the last of
 * duplicate member names, but the app behind us may take the first: `{"sub":"a","sub":"admin"}`
 * would then mean two subjects. We refuse duplicates at every depth instead.
 */

export type StrictJson = { readonly ok: true; readonly value: Record<string, unknown> } | { readonly ok: false; readonly why: string }

/** Parses `text`, which must be a JSON object without duplicate member names. */
export function parseStrictObject(text: string): StrictJson {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return { ok: false, why: 'not JSON' }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, why: 'not a JSON object' }
  // A flat object (every JOSE header, most claim sets) is checked by counting: JSON.parse keeps
  // one property per distinct name (`__proto__` included: it is an own property), so the text
  // names more members than the object has exactly when a name repeats. Nested objects take the
  // full walk.
  const members = flatMemberCount(text)
  const duplicated = members >= 0 ? members !== Object.keys(value).length : hasDuplicateMembers(text)
  return duplicated ? { ok: false, why: 'duplicate member names (RFC 7519 §4)' } : { ok: true, value: value as Record<string, unknown> }
}

/**
 * The number of members of the top-level object in text that JSON.parse accepted as an
 * object, or -1 when an object is nested in it (values that are arrays of scalars are fine).
 * Counts without allocating: no key is sliced or decoded.
 *
 * @example
 * flatMemberCount('{"a":1,"b":[1,"x,y"]}') // 2
 * flatMemberCount('{"a":{"b":1}}')         // -1
 */
export function flatMemberCount(text: string): number {
  let depth = 0
  let count = 0
  let expectKey = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x22 /* " */) {
      if (expectKey) {
        count++
        expectKey = false
      }
      // Skip the string, escapes included (bounded by the text even if it were unterminated).
      let j = i + 1
      while (j < text.length) {
        const d = text.charCodeAt(j)
        if (d === 0x22) break
        j += d === 0x5c /* \ */ ? 2 : 1
      }
      i = j
    } else if (c === 0x7b /* { */) {
      if (depth > 0) return -1
      depth = 1
      expectKey = true
    } else if (c === 0x5b /* [ */) {
      depth++
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) {
      depth--
    } else if (c === 0x2c /* , */) {
      expectKey = depth === 1
    }
  }
  return count
}

/**
 * One pass over text that JSON.parse already accepted: for each object, the set of its
 * member names so far. Strings are skipped as a whole (escapes included); a key with
 * escapes is decoded so `"\u0073ub"` and `"sub"` count as the same name.
 */
export function hasDuplicateMembers(text: string): boolean {
  const stack: Array<Set<string> | null> = [] // null for arrays
  let expectKey = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x7b /* { */) {
      stack.push(new Set())
      expectKey = true
    } else if (c === 0x5b /* [ */) {
      stack.push(null)
      expectKey = false
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop()
      expectKey = false
    } else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1]
      expectKey = top !== null && top !== undefined
    } else if (c === 0x22 /* " */) {
      let j = i + 1
      let escaped = false
      while (j < text.length) {
        const d = text.charCodeAt(j)
        if (d === 0x5c /* \ */) {
          escaped = true
          j += 2
          continue
        }
        if (d === 0x22) break
        j++
      }
      if (expectKey) {
        const raw = text.slice(i + 1, j)
        const key = escaped ? (JSON.parse(text.slice(i, j + 1)) as string) : raw
        const members = stack[stack.length - 1]!
        if (members.has(key)) return true
        members.add(key)
        expectKey = false
      }
      i = j
    }
  }
  return false
}
