;; FNV-1a 64 folded straight over the canonical CBOR of llm-d request-key blocks:
;;   key[i] = fnv64a(cbor([parent, tokens[i*B:(i+1)*B], extra[i]]))
;; No buffer is built and no BigInt is created per block: bytes are folded into an i64 as they are produced.
;; Memory layout is owned by the JS side (src/keys/block-hasher.ts).
(module
  (memory (export "memory") 1)

  ;; fold one byte
  (func $b (param $h i64) (param $x i32) (result i64)
    (i64.mul
      (i64.xor (local.get $h) (i64.extend_i32_u (local.get $x)))
      (i64.const 0x100000001b3)))

  ;; fold a CBOR head (major type already shifted into $mt) with a 32-bit argument, shortest form
  (func $head32 (param $h i64) (param $mt i32) (param $v i32) (result i64)
    (if (i32.lt_u (local.get $v) (i32.const 24))
      (then (return (call $b (local.get $h) (i32.or (local.get $mt) (local.get $v))))))
    (if (i32.lt_u (local.get $v) (i32.const 0x100))
      (then (return
        (call $b (call $b (local.get $h) (i32.or (local.get $mt) (i32.const 24))) (local.get $v)))))
    (if (i32.lt_u (local.get $v) (i32.const 0x10000))
      (then (return
        (call $b
          (call $b (call $b (local.get $h) (i32.or (local.get $mt) (i32.const 25)))
            (i32.shr_u (local.get $v) (i32.const 8)))
          (i32.and (local.get $v) (i32.const 0xff))))))
    (call $b
      (call $b
        (call $b
          (call $b (call $b (local.get $h) (i32.or (local.get $mt) (i32.const 26)))
            (i32.shr_u (local.get $v) (i32.const 24)))
          (i32.and (i32.shr_u (local.get $v) (i32.const 16)) (i32.const 0xff)))
        (i32.and (i32.shr_u (local.get $v) (i32.const 8)) (i32.const 0xff)))
      (i32.and (local.get $v) (i32.const 0xff))))

  ;; fold a CBOR unsigned int of up to 64 bits, shortest form
  (func $uint64 (param $h i64) (param $v i64) (result i64)
    (local $i i32)
    (if (i64.le_u (local.get $v) (i64.const 0xffffffff))
      (then (return (call $head32 (local.get $h) (i32.const 0) (i32.wrap_i64 (local.get $v))))))
    (local.set $h (call $b (local.get $h) (i32.const 0x1b)))
    (local.set $i (i32.const 56))
    (loop $bytes
      (local.set $h (call $b (local.get $h)
        (i32.and (i32.wrap_i64 (i64.shr_u (local.get $v) (i64.extend_i32_u (local.get $i)))) (i32.const 0xff))))
      (local.set $i (i32.sub (local.get $i) (i32.const 8)))
      (br_if $bytes (i32.ge_s (local.get $i) (i32.const 0))))
    (local.get $h))

  ;; Hash $n consecutive blocks of $bs tokens (u32 at $tok), chained from the parent key ($plo,$phi).
  ;; $extras: 0 when every block's extra is null, else a table of $n (ptr u32, len u32) pairs of pre-encoded
  ;; extra CBOR bytes (len 0 = null). Writes $n little-endian u64 keys at $out.
  (func (export "chain")
    (param $tok i32) (param $n i32) (param $bs i32) (param $plo i32) (param $phi i32)
    (param $extras i32) (param $out i32)
    (local $parent i64) (local $h i64) (local $blk i32) (local $t i32) (local $end i32)
    (local $arrHead i64) (local $ep i32) (local $eend i32)
    (local.set $parent
      (i64.or (i64.extend_i32_u (local.get $plo)) (i64.shl (i64.extend_i32_u (local.get $phi)) (i64.const 32))))
    (block $done
      (loop $blocks
        (br_if $done (i32.ge_u (local.get $blk) (local.get $n)))
        ;; 0x83 = array(3)
        (local.set $h (call $b (i64.const 0xcbf29ce484222325) (i32.const 0x83)))
        (local.set $h (call $uint64 (local.get $h) (local.get $parent)))
        (local.set $h (call $head32 (local.get $h) (i32.const 0x80) (local.get $bs)))
        (local.set $end (i32.add (local.get $tok) (i32.shl (local.get $bs) (i32.const 2))))
        ;; token heads inlined: this loop is the hot path (FOLD is expanded by scripts/build-wasm.mjs)
        (block $tokensDone
          (loop $tokens
            (br_if $tokensDone (i32.ge_u (local.get $tok) (local.get $end)))
            (local.set $t (i32.load (local.get $tok)))
            (local.set $tok (i32.add (local.get $tok) (i32.const 4)))
            (if (i32.lt_u (local.get $t) (i32.const 24))
              (then (FOLD (local.get $t)) (br $tokens)))
            (if (i32.lt_u (local.get $t) (i32.const 0x100))
              (then (FOLD (i32.const 24)) (FOLD (local.get $t)) (br $tokens)))
            (if (i32.lt_u (local.get $t) (i32.const 0x10000))
              (then
                (FOLD (i32.const 25))
                (FOLD (i32.shr_u (local.get $t) (i32.const 8)))
                (FOLD (i32.and (local.get $t) (i32.const 0xff)))
                (br $tokens)))
            (FOLD (i32.const 26))
            (FOLD (i32.shr_u (local.get $t) (i32.const 24)))
            (FOLD (i32.and (i32.shr_u (local.get $t) (i32.const 16)) (i32.const 0xff)))
            (FOLD (i32.and (i32.shr_u (local.get $t) (i32.const 8)) (i32.const 0xff)))
            (FOLD (i32.and (local.get $t) (i32.const 0xff)))
            (br $tokens)))
        (if (i32.eqz (local.get $extras))
          (then (local.set $h (call $b (local.get $h) (i32.const 0xf6))))
          (else
            (local.set $ep (i32.load (i32.add (local.get $extras) (i32.shl (local.get $blk) (i32.const 3)))))
            (local.set $eend (i32.add (local.get $ep)
              (i32.load (i32.add (local.get $extras) (i32.add (i32.shl (local.get $blk) (i32.const 3)) (i32.const 4))))))
            (if (i32.eq (local.get $ep) (local.get $eend))
              (then (local.set $h (call $b (local.get $h) (i32.const 0xf6))))
              (else
                (loop $ebytes
                  (local.set $h (call $b (local.get $h) (i32.load8_u (local.get $ep))))
                  (local.set $ep (i32.add (local.get $ep) (i32.const 1)))
                  (br_if $ebytes (i32.lt_u (local.get $ep) (local.get $eend))))))))
        (i64.store (i32.add (local.get $out) (i32.shl (local.get $blk) (i32.const 3))) (local.get $h))
        (local.set $parent (local.get $h))
        (local.set $blk (i32.add (local.get $blk) (i32.const 1)))
        (br $blocks))))
)
