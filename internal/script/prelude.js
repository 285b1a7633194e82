// Runs once in every new VM, before any user script. It removes what a
// sandboxed step must not have, bounds the built-ins that could allocate
// without limit in one uninterruptible call, makes common assignments keep
// working on frozen prototypes, and then freezes every built-in object, so
// that nothing a script does can be seen by a later run in the same VM.
//
// It is called with the limits and a native JSON depth check, and returns
// the helpers the host calls: [sanitize, describe].
(function (limits, jsonTooDeep) {
  'use strict';

  const G = globalThis;
  const freeze = Object.freeze;
  const getProto = Object.getPrototypeOf;
  const getOwn = Object.getOwnPropertyDescriptor;
  const define = Object.defineProperty;
  const objectKeys = Object.keys;
  const apply = Reflect.apply;
  const construct = Reflect.construct;
  const ownKeys = Reflect.ownKeys;
  const isArray = Array.isArray;
  const trunc = Math.trunc;
  const min = Math.min;
  const isFinite = Number.isFinite;
  const NumberCtor = Number;
  const ObjectCtor = Object;
  const ErrorCtor = Error;
  const TypeErr = TypeError;
  const RangeErr = RangeError;
  const WeakMapCtor = WeakMap;
  const wmGet = WeakMap.prototype.get;
  const wmSet = WeakMap.prototype.set;
  const MapCtor = Map;
  const SetCtor = Set;
  const WeakSetCtor = WeakSet;
  const PromiseCtor = Promise;
  const NumberProto = Number.prototype;
  const StringProto = String.prototype;
  const BooleanProto = Boolean.prototype;
  const numberValueOf = Number.prototype.valueOf;
  const stringValueOf = String.prototype.valueOf;
  const booleanValueOf = Boolean.prototype.valueOf;
  const SymIterator = Symbol.iterator;
  const SymReplace = Symbol.replace;
  const SymSplit = Symbol.split;
  const SymSpreadable = Symbol.isConcatSpreadable;
  const SymMatch = Symbol.match;
  const origJoinEarly = Array.prototype.join;
  const RegExpCtor = RegExp;
  const origExec = RegExp.prototype.exec;
  const max = Math.max;

  const MAX_STRING = limits.maxString;
  const MAX_ARRAY = limits.maxArray;
  const MAX_DEPTH = limits.maxDepth;
  const MAX_OUTPUT = limits.maxOutput;
  // Above this length, a string is searched for all matches of a pattern
  // by a loop in JavaScript rather than natively, so that the time limit
  // can stop it between matches.
  const NATIVE_TEXT = 262144;

  // Objects replaced below stay reachable in places (an arguments object
  // still holds the original array iterator), so they are frozen too.
  const replaced = [];

  const toStr = (v) => `${v}`;
  const isObject = (v) => v !== null && (typeof v === 'object' || typeof v === 'function');

  function toInteger(v) {
    const n = trunc(NumberCtor(v));
    return n === n ? n : 0;
  }

  function toLength(v) {
    const n = toInteger(v);
    return n > 0 ? min(n, 9007199254740991) : 0;
  }

  function tooLong(what, limit) {
    return new RangeErr(`${what} would exceed the sandbox limit of ${limit}`);
  }

  function checkString(length) {
    if (length > MAX_STRING) throw tooLong('the string length', MAX_STRING);
  }

  function checkArray(length) {
    if (length > MAX_ARRAY) throw tooLong('the array length', MAX_ARRAY);
  }

  function thisString(self, method) {
    if (self === null || self === undefined) {
      throw new TypeErr(`String.prototype.${method} called on null or undefined`);
    }
    return toStr(self);
  }

  function thisLength(self) {
    if (self === null || self === undefined) return 0;
    return toLength(ObjectCtor(self).length);
  }

  // replaceMethod installs wrapper as obj[key], keeping the name, length
  // and attributes of the original.
  function replaceMethod(obj, key, wrapper) {
    const d = getOwn(obj, key);
    replaced[replaced.length] = d.value;
    define(wrapper, 'name', { value: d.value.name, configurable: true });
    define(wrapper, 'length', { value: d.value.length, configurable: true });
    define(obj, key, { value: wrapper, writable: d.writable, enumerable: d.enumerable, configurable: d.configurable });
  }

  // --- What a sandboxed step must not have ------------------------------

  // Binary buffers allocate their full size in one call; code generation
  // from strings (eval, new Function) would bypass the source limits.
  const removed = ['eval', 'GoError', 'ArrayBuffer', 'SharedArrayBuffer', 'DataView',
    'Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array',
    'Int32Array', 'Uint32Array', 'Float32Array', 'Float64Array', 'BigInt64Array',
    'BigUint64Array', 'WeakRef', 'FinalizationRegistry'];
  for (let i = 0; i < removed.length; i++) delete G[removed[i]];

  function codeGeneration() {
    throw new TypeErr('creating functions from strings is not allowed in the sandbox');
  }
  const functionProtos = [Function.prototype];
  const samples = [function* () {}, async function () {}];
  for (let i = 0; i < samples.length; i++) functionProtos[functionProtos.length] = getProto(samples[i]);
  for (let i = 0; i < functionProtos.length; i++) {
    const proto = functionProtos[i];
    const original = getOwn(proto, 'constructor').value;
    const safe = function () { codeGeneration(); };
    define(safe, 'name', { value: original.name, configurable: true });
    define(safe, 'length', { value: 1, configurable: true });
    define(safe, 'prototype', { value: proto, writable: false, enumerable: false, configurable: false });
    replaced[replaced.length] = original;
    define(proto, 'constructor', { value: safe, writable: true, enumerable: false, configurable: true });
    if (i === 0) define(G, 'Function', { value: safe, writable: true, enumerable: false, configurable: true });
  }

  // --- Strings ----------------------------------------------------------

  const origRepeat = StringProto.repeat;
  replaceMethod(StringProto, 'repeat', {
    repeat(count) {
      const s = thisString(this, 'repeat');
      const n = toInteger(count);
      if (s.length > 0 && n > 0) checkString(s.length * n);
      return apply(origRepeat, s, [n]);
    },
  }.repeat);

  for (const key of ['padStart', 'padEnd']) {
    const orig = StringProto[key];
    replaceMethod(StringProto, key, {
      [key](maxLength, fillString) {
        const s = thisString(this, key);
        const n = toLength(maxLength);
        const fill = fillString === undefined ? undefined : toStr(fillString);
        if (n > s.length && fill !== '') checkString(n);
        return apply(orig, s, [n, fill]);
      },
    }[key]);
  }

  const origConcat = StringProto.concat;
  replaceMethod(StringProto, 'concat', {
    concat(...args) {
      const s = thisString(this, 'concat');
      let total = s.length;
      const parts = [];
      for (let i = 0; i < args.length; i++) {
        const p = toStr(args[i]);
        total += p.length;
        checkString(total);
        parts[i] = p;
      }
      return apply(origConcat, s, parts);
    },
  }.concat);

  // A replacement template is compiled once per call into parts: text,
  // or a reference coded as a number (n > 0: capture n; 0: the match;
  // -1: before it; -2: after it) or, for $<name>, an object {name}.
  function compileTemplate(template, m, named) {
    const parts = [];
    let text = '';
    let from = 0;
    for (let i = template.indexOf('$'); i >= 0 && i + 1 < template.length; i = template.indexOf('$', from)) {
      text += template.slice(from, i);
      const d = template[i + 1];
      from = i + 2;
      let ref;
      if (d === '$') {
        text += '$';
      } else if (d === '&') {
        ref = 0;
      } else if (d === '`') {
        ref = -1;
      } else if (d === "'") {
        ref = -2;
      } else if (d >= '0' && d <= '9') {
        const one = d.charCodeAt(0) - 48;
        const e = template[i + 2];
        const two = e !== undefined && e >= '0' && e <= '9' ? one * 10 + (e.charCodeAt(0) - 48) : -1;
        if (two >= 1 && two <= m) {
          ref = two;
          from = i + 3;
        } else if (one >= 1 && one <= m) {
          ref = one;
        } else {
          text += '$';
          from = i + 1;
        }
      } else if (d === '<' && named) {
        const close = template.indexOf('>', i + 2);
        if (close < 0) {
          text += '$';
          from = i + 1;
        } else {
          ref = { name: template.slice(i + 2, close) };
          from = close + 1;
        }
      } else {
        text += '$';
        from = i + 1;
      }
      if (ref !== undefined) {
        parts[parts.length] = text;
        parts[parts.length] = ref;
        text = '';
      }
    }
    parts[parts.length] = text + template.slice(from);
    return parts;
  }

  // expand fills in a compiled template for one match; args are what a
  // replacer function receives: the match, the captures, the position,
  // the string and, if the pattern has named groups, the groups.
  function expand(parts, args, m, groups) {
    const str = args[m + 2];
    const position = args[m + 1];
    const matched = args[0];
    let out = parts[0];
    for (let i = 1; i < parts.length; i += 2) {
      const ref = parts[i];
      let v;
      if (typeof ref === 'object') v = groups[ref.name];
      else if (ref > 0) v = args[ref];
      else if (ref === 0) v = matched;
      else if (ref === -1) v = str.slice(0, position);
      else v = str.slice(min(position + matched.length, str.length));
      if (v !== undefined) out += toStr(v);
      out += parts[i + 1];
    }
    return out;
  }

  // Templates are compiled per replace call, for the number of captures
  // the pattern has.
  function templateExpander(template) {
    let parts;
    let compiledFor = -1;
    let named = false;
    return function (args) {
      // The last argument is the named groups, if the pattern has any.
      const last = args[args.length - 1];
      const groups = isObject(last) ? last : undefined;
      const m = args.length - (groups === undefined ? 3 : 4);
      if (m !== compiledFor || named !== (groups !== undefined)) {
        compiledFor = m;
        named = groups !== undefined;
        parts = compileTemplate(template, m, named);
      }
      return expand(parts, args, m, groups);
    };
  }

  // nativeSafe reports whether a native replace of s with template cannot
  // build a string longer than MAX_STRING, counting every $-pattern as
  // the whole string.
  function nativeSafe(s, template) {
    let refs = 0;
    for (let i = template.indexOf('$'); i >= 0; i = template.indexOf('$', i + 1)) refs++;
    const perMatch = template.length + refs * s.length;
    return s.length + (s.length + 1) * perMatch <= MAX_STRING;
  }

  // boundedReplacer returns what to pass natively as the replacement: the
  // template itself if the result cannot outgrow MAX_STRING, otherwise
  // replacerFunction(s, replaceValue).
  function boundedReplacer(s, replaceValue) {
    if (typeof replaceValue !== 'function') {
      const template = toStr(replaceValue);
      if (nativeSafe(s, template)) return template;
      return replacerFunction(s, template);
    }
    return replacerFunction(s, replaceValue);
  }

  // replacerFunction returns a replacer function that produces what
  // replaceValue (a function or a template) would, and fails before the
  // result outgrows MAX_STRING.
  function replacerFunction(s, replaceValue) {
    const functional = typeof replaceValue === 'function';
    const template = functional ? '' : toStr(replaceValue);
    let total = s.length;
    const plain = !functional && template.indexOf('$') < 0;
    const expander = functional || plain ? undefined : templateExpander(template);
    return function (...args) {
      let r;
      if (functional) r = toStr(apply(replaceValue, undefined, args));
      else if (plain) r = template;
      else r = expander(args);
      total += r.length;
      checkString(total);
      return r;
    };
  }

  // replaceAllLoop is String.prototype.replaceAll with a string pattern,
  // for long strings.
  function replaceAllLoop(s, p, replaceValue) {
    const replacer = replacerFunction(s, replaceValue);
    const step = max(1, p.length);
    const acc = [];
    let end = 0;
    for (let pos = s.indexOf(p, 0); pos >= 0; pos = s.indexOf(p, pos + step)) {
      checkArray(acc.length);
      acc[acc.length] = s.slice(end, pos);
      acc[acc.length] = replacer(p, pos, s);
      end = pos + p.length;
      if (pos + step > s.length) break;
    }
    acc[acc.length] = s.slice(end);
    return apply(origJoinEarly, acc, ['']);
  }

  for (const key of ['replace', 'replaceAll']) {
    const orig = StringProto[key];
    replaceMethod(StringProto, key, {
      [key](pattern, replaceValue) {
        if (isObject(pattern)) {
          const custom = pattern[SymReplace];
          if (custom !== undefined && custom !== null) return apply(orig, this, [pattern, replaceValue]);
        }
        const s = thisString(this, key);
        const p = toStr(pattern);
        if (key === 'replaceAll' && s.length > NATIVE_TEXT) return replaceAllLoop(s, p, replaceValue);
        return apply(orig, s, [p, boundedReplacer(s, replaceValue)]);
      },
    }[key]);
  }

  // The spec's RegExpExec: a regexp's own exec, if it has one, is used.
  function regexpExec(rx, s) {
    const exec = rx.exec;
    if (typeof exec === 'function') {
      const r = apply(exec, rx, [s]);
      if (r !== null && !isObject(r)) throw new TypeErr('exec must return an object or null');
      return r;
    }
    return apply(origExec, rx, [s]);
  }

  function advance(s, index, unicode) {
    if (!unicode || index + 1 >= s.length) return index + 1;
    const c = s.charCodeAt(index);
    if (c < 0xd800 || c > 0xdbff) return index + 1;
    const d = s.charCodeAt(index + 1);
    return d >= 0xdc00 && d <= 0xdfff ? index + 2 : index + 1;
  }

  function hasFlag(flags, f) {
    return flags.indexOf(f) >= 0;
  }

  // replaceLoop is RegExp.prototype[Symbol.replace] for long strings: the
  // same steps as the spec, one exec at a time.
  function replaceLoop(rx, s, replaceValue) {
    const functional = typeof replaceValue === 'function';
    const template = functional ? '' : toStr(replaceValue);
    const flags = toStr(rx.flags);
    const global = hasFlag(flags, 'g');
    const unicode = hasFlag(flags, 'u') || hasFlag(flags, 'v');
    const plain = !functional && template.indexOf('$') < 0;
    const expander = functional || plain ? undefined : templateExpander(template);
    if (global) rx.lastIndex = 0;
    const results = [];
    for (;;) {
      const result = regexpExec(rx, s);
      if (result === null) break;
      results[results.length] = result;
      checkArray(results.length);
      if (plain) checkString(s.length + results.length * template.length);
      if (!global) break;
      if (toStr(result[0]) === '') rx.lastIndex = advance(s, toLength(rx.lastIndex), unicode);
    }
    const acc = [];
    let size = 0;
    let next = 0;
    for (let r = 0; r < results.length; r++) {
      const result = results[r];
      const n = max(toLength(result.length) - 1, 0);
      const matched = toStr(result[0]);
      const position = max(min(toInteger(result.index), s.length), 0);
      const args = [matched];
      for (let i = 1; i <= n; i++) {
        const c = result[i];
        args[i] = c === undefined ? undefined : toStr(c);
      }
      args[n + 1] = position;
      args[n + 2] = s;
      const groups = result.groups;
      if (groups !== undefined) args[n + 3] = functional ? groups : ObjectCtor(groups);
      let replacement;
      if (functional) replacement = toStr(apply(replaceValue, undefined, args));
      else if (plain) replacement = template;
      else replacement = expander(args);
      if (position >= next) {
        acc[acc.length] = s.slice(next, position);
        acc[acc.length] = replacement;
        size += position - next + replacement.length;
        checkString(size);
        next = position + matched.length;
      }
    }
    if (next < s.length) acc[acc.length] = s.slice(next);
    return apply(origJoinEarly, acc, ['']);
  }

  // matchLoop is RegExp.prototype[Symbol.match] of a global regexp for
  // long strings.
  function matchLoop(rx, s, unicode) {
    rx.lastIndex = 0;
    const out = [];
    for (;;) {
      const result = regexpExec(rx, s);
      if (result === null) return out.length === 0 ? null : out;
      const m = toStr(result[0]);
      out[out.length] = m;
      checkArray(out.length);
      if (m === '') rx.lastIndex = advance(s, toLength(rx.lastIndex), unicode);
    }
  }

  // splitLoop is RegExp.prototype[Symbol.split] for long strings. The spec
  // tries a sticky match at every position; searching with a global copy
  // finds the same matches without a step per character.
  function splitLoop(rx, s, lim) {
    const flags = toStr(rx.flags);
    const unicode = hasFlag(flags, 'u') || hasFlag(flags, 'v');
    let searchFlags = '';
    for (let i = 0; i < flags.length; i++) if (flags[i] !== 'y' && flags[i] !== 'g') searchFlags += flags[i];
    const splitter = new RegExpCtor(rx, searchFlags + 'g');
    const out = [];
    if (lim === 0) return out;
    let p = 0;
    let q = 0;
    while (q < s.length) {
      splitter.lastIndex = q;
      const z = regexpExec(splitter, s);
      if (z === null) break;
      const start = toInteger(z.index);
      const e = min(toLength(splitter.lastIndex), s.length);
      if (start >= s.length) break;
      if (e === p) {
        q = advance(s, start, unicode);
        continue;
      }
      out[out.length] = s.slice(p, start);
      if (out.length === lim) return out;
      p = e;
      const n = max(toLength(z.length) - 1, 0);
      for (let i = 1; i <= n; i++) {
        out[out.length] = z[i];
        if (out.length === lim) return out;
      }
      checkArray(out.length);
      q = p;
    }
    out[out.length] = s.slice(p);
    return out;
  }

  const RegExpProto = RegExp.prototype;
  const origRegExpReplace = RegExpProto[SymReplace];
  replaceMethod(RegExpProto, SymReplace, {
    [SymReplace](string, replaceValue) {
      if (!isObject(this)) return apply(origRegExpReplace, this, [string, replaceValue]);
      const s = toStr(string);
      if (s.length > NATIVE_TEXT) return replaceLoop(this, s, replaceValue);
      return apply(origRegExpReplace, this, [s, boundedReplacer(s, replaceValue)]);
    },
  }[SymReplace]);

  const origRegExpMatch = RegExpProto[SymMatch];
  replaceMethod(RegExpProto, SymMatch, {
    [SymMatch](string) {
      if (!isObject(this)) return apply(origRegExpMatch, this, [string]);
      const s = toStr(string);
      const flags = toStr(this.flags);
      if (s.length > NATIVE_TEXT && hasFlag(flags, 'g')) return matchLoop(this, s, hasFlag(flags, 'u') || hasFlag(flags, 'v'));
      const res = apply(origRegExpMatch, this, [s]);
      if (res !== null) checkArray(res.length);
      return res;
    },
  }[SymMatch]);

  // split asks for at most MAX_ARRAY + 1 pieces, so it never builds a
  // larger array than the limit allows.
  function splitLimit(lim) {
    return lim === undefined ? MAX_ARRAY + 1 : min(lim >>> 0, MAX_ARRAY + 1);
  }
  const origSplit = StringProto.split;
  replaceMethod(StringProto, 'split', {
    split(separator, lim) {
      const res = apply(origSplit, this, [separator, splitLimit(lim)]);
      checkArray(res.length);
      return res;
    },
  }.split);
  const origRegExpSplit = RegExpProto[SymSplit];
  replaceMethod(RegExpProto, SymSplit, {
    [SymSplit](string, lim) {
      if (!isObject(this)) return apply(origRegExpSplit, this, [string, lim]);
      const s = toStr(string);
      const l = splitLimit(lim);
      const res = s.length > NATIVE_TEXT ? splitLoop(this, s, l) : apply(origRegExpSplit, this, [s, l]);
      checkArray(res.length);
      return res;
    },
  }[SymSplit]);

  replaceMethod(String, 'raw', {
    raw(template, ...subs) {
      const raw = ObjectCtor(ObjectCtor(template).raw);
      const len = toLength(raw.length);
      checkArray(len);
      const parts = [];
      let size = 0;
      for (let i = 0; i < len; i++) {
        const p = toStr(raw[i]);
        parts[parts.length] = p;
        size += p.length;
        if (i + 1 < len && i < subs.length) {
          const q = toStr(subs[i]);
          parts[parts.length] = q;
          size += q.length;
        }
        checkString(size);
      }
      return apply(origJoinEarly, parts, ['']);
    },
  }.raw);

  // --- Arrays -----------------------------------------------------------
  //
  // Setting an array's length is free, so a huge length is cheap to make;
  // every built-in that walks one is bounded here.

  const ArrayProto = Array.prototype;
  const origJoin = ArrayProto.join;
  const arrayWrappers = new MapCtor();
  const special = {
    join(orig) {
      return {
        join(separator) {
          if (this === null || this === undefined) throw new TypeErr('Array.prototype.join called on null or undefined');
          const o = ObjectCtor(this);
          const len = toLength(o.length);
          checkArray(len);
          const sep = separator === undefined ? ',' : toStr(separator);
          const parts = [];
          let total = 0;
          for (let i = 0; i < len; i++) {
            const e = o[i];
            const p = e === undefined || e === null ? '' : toStr(e);
            total += p.length + (i > 0 ? sep.length : 0);
            checkString(total);
            parts[i] = p;
          }
          return apply(orig, parts, [sep]);
        },
      }.join;
    },
    toLocaleString() {
      return {
        toLocaleString() {
          if (this === null || this === undefined) throw new TypeErr('Array.prototype.toLocaleString called on null or undefined');
          const o = ObjectCtor(this);
          const len = toLength(o.length);
          checkArray(len);
          const parts = [];
          let total = 0;
          for (let i = 0; i < len; i++) {
            const e = o[i];
            const p = e === undefined || e === null ? '' : toStr(apply(e.toLocaleString, e, []));
            total += p.length + (i > 0 ? 1 : 0);
            checkString(total);
            parts[i] = p;
          }
          return apply(origJoin, parts, [',']);
        },
      }.toLocaleString;
    },
    concat(orig) {
      return {
        concat(...items) {
          let total = 0;
          const all = [this];
          for (let i = 0; i < items.length; i++) all[i + 1] = items[i];
          for (let i = 0; i < all.length; i++) {
            const e = all[i];
            let spread = false;
            if (isObject(e)) {
              const s = e[SymSpreadable];
              spread = s !== undefined ? !!s : isArray(e);
            }
            total += spread ? toLength(e.length) : 1;
            checkArray(total);
          }
          return apply(orig, this, items);
        },
      }.concat;
    },
    sort(orig) {
      return {
        sort(comparefn) {
          const len = thisLength(this);
          checkArray(len);
          return apply(orig, this, [comparefn === undefined && len > NATIVE_TEXT ? compareStrings : comparefn]);
        },
      }.sort;
    },
    toSorted(orig) {
      return {
        toSorted(comparefn) {
          const len = thisLength(this);
          checkArray(len);
          return apply(orig, this, [comparefn === undefined && len > NATIVE_TEXT ? compareStrings : comparefn]);
        },
      }.toSorted;
    },
    flat(orig) {
      return {
        flat(depth) {
          checkArray(thisLength(this));
          const d = depth === undefined ? 1 : toInteger(depth);
          if (d > 64) checkNesting(this, d);
          return depth === undefined ? apply(orig, this, []) : apply(orig, this, [depth]);
        },
      }.flat;
    },
  };

  // compareStrings is the default order of sort, as a function, so that
  // sorting a long array runs JavaScript the time limit can stop.
  function compareStrings(x, y) {
    const a = toStr(x);
    const b = toStr(y);
    return a < b ? -1 : a > b ? 1 : 0;
  }

  // checkNesting walks arrays nested in root down to depth levels and
  // fails when they nest deeper than MAX_DEPTH or hold more than MAX_ARRAY
  // elements in all: flat recurses natively.
  function checkNesting(root, depth) {
    const stack = [ObjectCtor(root), 0];
    let seen = 0;
    while (stack.length > 0) {
      const level = stack[stack.length - 1];
      const o = stack[stack.length - 2];
      stack.length -= 2;
      const len = toLength(o.length);
      seen += len;
      checkArray(seen);
      if (level >= depth) continue;
      for (let i = 0; i < len; i++) {
        const e = o[i];
        if (isArray(e)) {
          if (level + 1 > MAX_DEPTH) throw tooLong('the nesting depth', MAX_DEPTH);
          stack[stack.length] = e;
          stack[stack.length] = level + 1;
        }
      }
    }
  }

  const arrayKeys = ownKeys(ArrayProto);
  for (let i = 0; i < arrayKeys.length; i++) {
    const key = arrayKeys[i];
    const d = getOwn(ArrayProto, key);
    if (key === 'constructor' || d === undefined || typeof d.value !== 'function') continue;
    const orig = d.value;
    let wrapper = arrayWrappers.get(orig);
    if (wrapper === undefined) {
      if (typeof key === 'string' && special[key] !== undefined && getOwn(special, key) !== undefined) {
        wrapper = special[key](orig);
      } else {
        wrapper = {
          method(...args) {
            checkArray(thisLength(this));
            return apply(orig, this, args);
          },
        }.method;
      }
      arrayWrappers.set(orig, wrapper);
    }
    replaceMethod(ArrayProto, key, wrapper);
  }

  // An iterator taken from a short array keeps working after the array's
  // length is set to something huge, and spreading it (or passing it to
  // new Set) loops natively over every index. Through this wrapper each
  // step runs JavaScript, where the time and memory watchdogs can stop it.
  const ArrayIteratorProto = getProto([][SymIterator]());
  const origNext = ArrayIteratorProto.next;
  replaceMethod(ArrayIteratorProto, 'next', {
    next() {
      return apply(origNext, this, []);
    },
  }.next);

  // Spreading a string makes an array of its characters.
  const origStringIterator = StringProto[SymIterator];
  replaceMethod(StringProto, SymIterator, {
    [SymIterator]() {
      const s = thisString(this, '[Symbol.iterator]');
      checkArray(s.length);
      return apply(origStringIterator, s, []);
    },
  }[SymIterator]);

  const origFrom = Array.from;
  replaceMethod(Array, 'from', {
    from(...args) {
      const items = args[0];
      if (items !== null && items !== undefined) {
        const it = items[SymIterator];
        if (it === undefined || it === null) checkArray(toLength(ObjectCtor(items).length));
      }
      return apply(origFrom, this, args);
    },
  }.from);

  // Argument lists are built natively from array-likes.
  function checkArgumentList(list) {
    if (isObject(list)) checkArray(toLength(list.length));
  }
  const FunctionProto = Function.prototype;
  const origFunctionApply = FunctionProto.apply;
  replaceMethod(FunctionProto, 'apply', {
    apply(...args) {
      checkArgumentList(args[1]);
      return apply(origFunctionApply, this, args);
    },
  }.apply);
  replaceMethod(Reflect, 'apply', {
    apply(...args) {
      checkArgumentList(args[2]);
      return apply(apply, undefined, args);
    },
  }.apply);
  replaceMethod(Reflect, 'construct', {
    construct(...args) {
      checkArgumentList(args[1]);
      return apply(construct, undefined, args);
    },
  }.construct);

  // --- JSON -------------------------------------------------------------

  const origParse = JSON.parse;
  replaceMethod(JSON, 'parse', {
    parse(...args) {
      const text = toStr(args[0]);
      if (jsonTooDeep(text, MAX_DEPTH)) throw tooLong('the nesting depth of the JSON text', MAX_DEPTH);
      args[0] = text;
      return apply(origParse, JSON, args);
    },
  }.parse);

  const origStringify = JSON.stringify;
  replaceMethod(JSON, 'stringify', {
    stringify(value, replacer, space) {
      let userReplacer;
      let allow;
      if (typeof replacer === 'function') {
        userReplacer = replacer;
      } else if (isArray(replacer)) {
        allow = [];
        const seen = new SetCtor();
        const len = toLength(replacer.length);
        checkArray(len);
        for (let i = 0; i < len; i++) {
          const v = replacer[i];
          let item;
          if (typeof v === 'string') item = v;
          else if (typeof v === 'number') item = toStr(v);
          else if (isObject(v) && (v instanceof String || v instanceof Number)) item = toStr(v);
          if (item !== undefined && !seen.has(item)) {
            seen.add(item);
            allow[allow.length] = item;
          }
        }
      }
      let gap = 0;
      if (typeof space === 'number') gap = min(10, toInteger(space));
      else if (typeof space === 'string') gap = min(10, space.length);
      else if (isObject(space)) gap = 10;
      const depths = new WeakMapCtor();
      let total = 0;
      function guard(key, v) {
        if (userReplacer !== undefined) v = apply(userReplacer, this, [key, v]);
        const d = isObject(this) ? apply(wmGet, depths, [this]) || 0 : 0;
        total += key.length + 4 + d * gap;
        if (typeof v === 'string') {
          total += v.length + 2;
        } else if (isObject(v) && typeof v !== 'function') {
          if (d + 1 > MAX_DEPTH) throw tooLong('the nesting depth', MAX_DEPTH);
          if (isArray(v)) {
            checkArray(toLength(v.length));
          } else if (allow !== undefined) {
            const picked = {};
            for (let i = 0; i < allow.length; i++) {
              const x = v[allow[i]];
              if (x !== undefined) define(picked, allow[i], { value: x, writable: true, enumerable: true, configurable: true });
            }
            v = picked;
          }
          apply(wmSet, depths, [v, d + 1]);
        } else {
          total += 24;
        }
        checkString(total);
        return v;
      }
      return apply(origStringify, JSON, [value, guard, space]);
    },
  }.stringify);

  const boundedStringify = JSON.stringify;

  // --- Assignments that frozen prototypes would refuse ----------------------
  //
  // In strict code, assigning obj.toString = f fails when the inherited
  // toString is read-only, as it is once Object.prototype is frozen. These
  // properties become accessors whose setter defines an own property on the
  // object assigned to, as an assignment would without the freeze.
  function tame(obj, key) {
    const d = getOwn(obj, key);
    if (d === undefined || !('value' in d) || !d.configurable) return;
    const value = d.value;
    define(obj, key, {
      get: function () { return value; },
      set: function (v) {
        if (this === obj) throw new TypeErr(`Cannot assign to read only property '${toStr(key)}' of a built-in object`);
        define(this, key, { value: v, writable: true, enumerable: true, configurable: true });
      },
      enumerable: d.enumerable,
      configurable: false,
    });
  }
  const objectProtoKeys = ownKeys(Object.prototype);
  for (let i = 0; i < objectProtoKeys.length; i++) tame(Object.prototype, objectProtoKeys[i]);
  const errorCtors = [Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError];
  if (typeof AggregateError === 'function') errorCtors[errorCtors.length] = AggregateError;
  for (let i = 0; i < errorCtors.length; i++) {
    const p = errorCtors[i].prototype;
    for (const key of ['name', 'message', 'constructor', 'toString']) tame(p, key);
  }
  tame(FunctionProto, 'toString');

  // --- Freeze every built-in ------------------------------------------------

  const strictArguments = (function () { return arguments; })();
  const roots = [G,
    getProto(function* () {}), getProto(async function () {}),
    getProto([][SymIterator]()), getProto(''[SymIterator]()),
    getProto(new MapCtor()[SymIterator]()), getProto(new SetCtor()[SymIterator]()),
    getProto('a'.matchAll(/a/g)),
    getOwn(strictArguments, SymIterator).value,
    getOwn(strictArguments, 'callee').get];
  for (let i = 0; i < replaced.length; i++) roots[roots.length] = replaced[i];

  const frozen = new WeakSetCtor();
  const pending = roots;
  while (pending.length > 0) {
    const o = pending[pending.length - 1];
    pending.length--;
    if (!isObject(o) || frozen.has(o)) continue;
    frozen.add(o);
    freeze(o);
    pending[pending.length] = getProto(o);
    const keys = ownKeys(o);
    for (let i = 0; i < keys.length; i++) {
      const d = getOwn(o, keys[i]);
      if ('value' in d) {
        pending[pending.length] = d.value;
      } else {
        pending[pending.length] = d.get;
        pending[pending.length] = d.set;
      }
    }
  }

  // --- Host helpers ---------------------------------------------------------

  // sanitize turns the value a script returned into a fresh structure of
  // plain objects, arrays, strings, finite numbers, booleans and null, as
  // JSON.stringify would see it (toJSON, undefined properties left out,
  // NaN as null), but refusing what JSON.stringify silently drops or
  // mangles. It returns [problem, value]; problem is null when the value is
  // fine. Exceptions thrown by the script's own code (a getter, a toJSON)
  // propagate. A VM runs one thing at a time, so the walk keeps its state
  // here rather than in closures made per call.
  const ObjectProto = Object.prototype;
  const ArrayProtoRef = Array.prototype;
  const outObjects = [];
  const outPath = [];
  let outSize = 0;

  function OutputProblem(message) {
    this.message = message;
  }

  function outWhere() {
    let p = 'the returned value';
    for (let i = 0; i < outPath.length; i++) {
      const k = outPath[i];
      p += typeof k === 'number' ? `[${k}]` : `.${k}`;
    }
    return p;
  }

  function outFail(what) {
    throw new OutputProblem(`${outWhere()} ${what}`);
  }

  function outGrow(n) {
    outSize += n;
    if (outSize > MAX_OUTPUT) outFail(`makes the output larger than the limit of ${MAX_OUTPUT} bytes`);
  }

  function outValue(v, key) {
    if (isObject(v) && typeof v !== 'function') {
      const toJSON = v.toJSON;
      if (typeof toJSON === 'function') v = apply(toJSON, v, [toStr(key)]);
    }
    switch (typeof v) {
      case 'undefined':
        return undefined;
      case 'string':
        outGrow(v.length + 2);
        return v;
      case 'number':
        outGrow(8);
        return isFinite(v) ? v : null;
      case 'boolean':
        outGrow(5);
        return v;
      case 'function':
        return outFail('is a function; a script can only return JSON values');
      case 'symbol':
        return outFail('is a symbol; a script can only return JSON values');
      case 'bigint':
        return outFail('is a BigInt; convert it to a number or a string');
    }
    if (v === null) {
      outGrow(4);
      return null;
    }
    const proto = getProto(v);
    const array = proto === ArrayProtoRef || isArray(v);
    if (!array && proto !== ObjectProto && proto !== null) {
      if (v instanceof MapCtor || v instanceof SetCtor || v instanceof WeakMapCtor || v instanceof WeakSetCtor) {
        return outFail('is a Map or Set; convert it to an object or an array');
      }
      if (v instanceof PromiseCtor) return outFail('is a promise; return its value instead');
      if (proto === NumberProto) return apply(numberValueOf, v, []);
      if (proto === StringProto) return apply(stringValueOf, v, []);
      if (proto === BooleanProto) return apply(booleanValueOf, v, []);
    }
    for (let i = 0; i < outObjects.length; i++) {
      if (outObjects[i] === v) outFail('refers to itself (a cycle)');
    }
    if (outObjects.length >= MAX_DEPTH) outFail(`is nested more than ${MAX_DEPTH} levels deep`);
    outObjects[outObjects.length] = v;
    let out;
    if (array) {
      const len = toLength(v.length);
      if (len > MAX_ARRAY) outFail(`has more than ${MAX_ARRAY} elements`);
      out = [];
      outGrow(2 + len);
      for (let i = 0; i < len; i++) {
        outPath[outPath.length] = i;
        const e = outValue(v[i], i);
        outPath.length--;
        out[i] = e === undefined ? null : e;
      }
    } else {
      out = {};
      outGrow(2);
      const keys = objectKeys(v);
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i];
        outPath[outPath.length] = k;
        const e = outValue(v[k], k);
        outPath.length--;
        if (e !== undefined) {
          outGrow(k.length + 4);
          // Assigning __proto__ would set the prototype; other keys named
          // like built-in methods go through the setters of tame().
          if (k === '__proto__') define(out, k, { value: e, writable: true, enumerable: true, configurable: true });
          else out[k] = e;
        }
      }
    }
    outObjects.length--;
    return out;
  }

  function sanitize(root) {
    outObjects.length = 0;
    outPath.length = 0;
    outSize = 0;
    try {
      const out = outValue(root, '');
      return [null, out === undefined ? null : out];
    } catch (e) {
      if (e instanceof OutputProblem) return [e.message, null];
      throw e;
    }
  }

  // describe renders a thrown value for an error message.
  function describe(e) {
    try {
      if (e instanceof ErrorCtor) {
        const name = toStr(e.name);
        const message = toStr(e.message);
        return message === '' ? name : `${name}: ${message}`;
      }
      if (typeof e === 'string') return e;
      if (isObject(e)) {
        // The bounded JSON.stringify: a thrown value can be anything.
        const j = apply(boundedStringify, JSON, [e]);
        if (j !== undefined) return j;
      }
      return toStr(e);
    } catch (_) {
      return 'a value that cannot be shown';
    }
  }

  return [sanitize, describe];
})
