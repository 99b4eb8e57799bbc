/**
 * A vLLM /metrics page as a v1 engine serves it (bench only): the families, label sets and histogram buckets of
 * vllm/v1/metrics/loggers.py (PrometheusStatLogger: per-engine series labelled `engine` and `model_name`; counters
 * with their `_created` samples, as prometheus_client writes them; histograms with every `le` bucket, `+Inf`, `_count`,
 * `_sum`, `_created`), for `engines` data-parallel engines. Token-count histograms use build_1_2_5_buckets(max_model_len)
 * (1, 2, 5, 10, 20, 50, … up to max_model_len). A DP=2 page of a 32k-context model is ~65 kB, ~740 lines: twice the
 * 30 kB fixture, which lists only some of the families.
 */
export function vllmPage(engines: number, model = 'Qwen/Qwen3-8B', maxModelLen = 32_768): string {
  const out: string[] = [];
  const created = 1_764_000_000.123;
  const labels = (engine: number, extra = '') => `{engine="${engine}",${extra}model_name="${model}"}`;
  const gauge = (name: string, help: string, value: (e: number) => number) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    for (let e = 0; e < engines; e++) out.push(`${name}${labels(e)} ${float(value(e))}`);
  };
  const counter = (name: string, help: string, extra: string[] = ['']) => {
    out.push(`# HELP ${name}_total ${help}`, `# TYPE ${name}_total counter`);
    for (let e = 0; e < engines; e++)
      for (const x of extra) out.push(`${name}_total${labels(e, x)} ${1234 * (e + 1)}.0`);
    out.push(`# HELP ${name}_created ${help}`, `# TYPE ${name}_created gauge`);
    for (let e = 0; e < engines; e++) for (const x of extra) out.push(`${name}_created${labels(e, x)} ${created}`);
  };
  const histogram = (name: string, help: string, buckets: number[]) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`);
    for (let e = 0; e < engines; e++) {
      let count = 0;
      for (const le of [...buckets.map((b) => b.toFixed(Number.isInteger(b) ? 1 : 3)), '+Inf']) {
        count += 7;
        out.push(`${name}_bucket${labels(e, `le="${le}",`)} ${count}.0`);
      }
      out.push(`${name}_count${labels(e)} ${count}.0`, `${name}_sum${labels(e)} ${(count * 0.731).toFixed(6)}`);
    }
    out.push(`# HELP ${name}_created ${help}`, `# TYPE ${name}_created gauge`);
    for (let e = 0; e < engines; e++) out.push(`${name}_created${labels(e)} ${created}`);
  };
  const float = (v: number) => (Number.isInteger(v) ? v.toFixed(1) : String(v));
  const oneTwoFive: number[] = [];
  for (let m = 1; ; m *= 10) {
    const step = [1, 2, 5].map((k) => k * m).filter((v) => v <= maxModelLen);
    oneTwoFive.push(...step);
    if (step.length < 3) break;
  }
  const latency = [0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680];
  // The process and Python collectors prometheus_client registers by default.
  for (const g of [0, 1, 2]) out.push(`python_gc_objects_collected_total{generation="${g}"} ${9000 + g}.0`);
  out.push('python_info{implementation="CPython",major="3",minor="12",patchlevel="3",version="3.12.3"} 1.0');
  for (const p of ['virtual_memory_bytes', 'resident_memory_bytes', 'start_time_seconds', 'cpu_seconds_total'])
    out.push(`# HELP process_${p} process ${p}`, `# TYPE process_${p} gauge`, `process_${p} 1.2345e+09`);
  gauge('vllm:num_requests_running', 'Number of requests in model execution batches.', (e) => 3 + 2 * e);
  gauge('vllm:num_requests_waiting', 'Number of requests waiting to be processed.', (e) => 1 + 6 * e);
  gauge('vllm:gpu_cache_usage_perc', 'GPU KV-cache usage. DEPRECATED.', (e) => 0.25 + 0.375 * e);
  gauge('vllm:kv_cache_usage_perc', 'KV-cache usage. 1 means 100 percent usage.', (e) => 0.25 + 0.375 * e);
  counter('vllm:gpu_prefix_cache_queries', 'GPU prefix cache queries. DEPRECATED.');
  counter('vllm:gpu_prefix_cache_hits', 'GPU prefix cache hits. DEPRECATED.');
  counter('vllm:prefix_cache_queries', 'Prefix cache queries, in terms of number of queried tokens.');
  counter('vllm:prefix_cache_hits', 'Prefix cache hits, in terms of number of cached tokens.');
  counter('vllm:num_preemptions', 'Cumulative number of preemption from the engine.');
  counter('vllm:prompt_tokens', 'Number of prefill tokens processed.');
  counter('vllm:generation_tokens', 'Number of generation tokens processed.');
  counter('vllm:request_success', 'Count of successfully processed requests.', [
    'finished_reason="stop",',
    'finished_reason="length",',
    'finished_reason="abort",',
  ]);
  histogram('vllm:request_prompt_tokens', 'Number of prefill tokens processed.', oneTwoFive);
  histogram('vllm:request_generation_tokens', 'Number of generation tokens processed.', oneTwoFive);
  histogram(
    'vllm:iteration_tokens_total',
    'Histogram of number of tokens per engine_step.',
    [1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384],
  );
  histogram(
    'vllm:request_max_num_generation_tokens',
    'Histogram of maximum number of requested generation tokens.',
    oneTwoFive,
  );
  histogram('vllm:request_params_n', 'Histogram of the n request parameter.', [1, 2, 5, 10, 20]);
  histogram('vllm:request_params_max_tokens', 'Histogram of the max_tokens request parameter.', oneTwoFive);
  histogram(
    'vllm:time_to_first_token_seconds',
    'Histogram of time to first token in seconds.',
    [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560],
  );
  histogram(
    'vllm:time_per_output_token_seconds',
    'Histogram of time per output token in seconds.',
    [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80],
  );
  histogram(
    'vllm:time_per_prefill_token_request_seconds',
    'Time spent per token during prefill phase in seconds',
    [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1],
  );
  for (const [name, phase] of [
    ['e2e_request_latency_seconds', 'e2e request latency'],
    ['request_queue_time_seconds', 'time spent in WAITING phase for request'],
    ['request_inference_time_seconds', 'time spent in RUNNING phase for request'],
    ['request_prefill_time_seconds', 'time spent in PREFILL phase for request'],
    ['request_decode_time_seconds', 'time spent in DECODE phase for request'],
  ])
    histogram(`vllm:${name}`, `Histogram of ${phase}.`, latency);
  out.push(
    '# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig',
    '# TYPE vllm:cache_config_info gauge',
  );
  for (let e = 0; e < engines; e++)
    out.push(
      `vllm:cache_config_info{block_size="16",cache_dtype="auto",enable_prefix_caching="True",engine="${e}",gpu_memory_utilization="0.9",num_gpu_blocks="27000"} 1.0`,
    );
  return `${out.join('\n')}\n`;
}
