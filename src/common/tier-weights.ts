/**
 * Default tier weights, written once: the configuration schema (ops/config.ts) and the scorer (scoring/tier-weights.ts)
 * both read them from here.
 *
 * Default weights (docs/configuration.md): what reusing a block from the tier is worth against recomputing it.
 * - GPU 1.0, host memory 0.8 (`CPU`; SGLang's `CPU_PINNED` is the same tier). Dynamo's router credits host-pinned
 *   hits 0.75 and disk hits 0.25 (ai-dynamo/dynamo lib/kv-router/src/scheduling/selector.rs, `host_cache_hit_weight`,
 *   `disk_cache_hit_weight`) and routes vLLM's `STORAGE` medium to its disk tier (ai-dynamo/dynamo#11571): DISK,
 *   STORAGE and vLLM 0.26's FS 0.25; object stores (OBJ) and SGLang's shared `EXTERNAL` pool 0.2, as llm-d weighs
 *   `object_store` (llm-d/llm-d-router#2809).
 * - `*_REMOTE`: a block vLLM marks `locality: REMOTE` lives in storage this pod does not own (vllm-project/vllm#48281);
 *   every pod that mounts it could load it, so it says little about this pod: 0.1.
 * - Unknown tiers 0.1 (UNKNOWN_TIER_WEIGHT), not 1.0: an unknown tier's reuse cost is unknown, and crediting it like
 *   GPU misroutes. llm-d scores unconfigured tiers 0 (llm-d/llm-d-router#2809); we keep a small positive weight so a
 *   held block still ranks above none, below every known tier.
 */
export const DEFAULT_TIER_WEIGHT_TABLE: Readonly<Record<string, number>> = {
  GPU: 1.0,
  CPU: 0.8,
  CPU_PINNED: 0.8,
  DISK: 0.25,
  STORAGE: 0.25,
  FS: 0.25,
  OBJ: 0.2,
  EXTERNAL: 0.2,
  STORAGE_REMOTE: 0.1,
  FS_REMOTE: 0.1,
  OBJ_REMOTE: 0.1,
};

export const UNKNOWN_TIER_WEIGHT = 0.1;
