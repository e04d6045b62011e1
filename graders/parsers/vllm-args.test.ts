import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DeploylabError } from '../../runner/core/errors.js';
import { PyRepr, parsePythonLiteral, parseVllmStartupLog, splitKeyValues } from './vllm-args.js';

const DIR = join(import.meta.dirname, '__fixtures__', 'vllm');
const fixture = (name: string): string => readFileSync(join(DIR, name), 'utf8');

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof DeploylabError) return e.code;
    throw e;
  }
  throw new Error('did not throw');
}

describe('parseVllmStartupLog on real start-up logs', () => {
  it('v0.6.4.post1, V0, four-way tensor parallel (Granite 3.1 8B)', () => {
    const s = parseVllmStartupLog(fixture('log-v0.6.4.post1-tp4-granite.log'));
    expect(s.engine).toBe('V0');
    expect(s.engineStarts).toBe(1);
    expect(s.version).toEqual({ value: '0.6.4.post1', source: 'engine-config', line: 9 });
    const path = '/var/home/instruct/.cache/instructlab/models/granite-3.1-8b-lab-v1';
    expect(s.model).toEqual({ value: path, source: 'engine-config', line: 9 });
    expect(s.servedModelName).toEqual({ value: [path], source: 'engine-config', line: 9 });
    expect(s.tensorParallelSize).toEqual({ value: 4, source: 'engine-config', line: 9 });
    expect(s.pipelineParallelSize).toEqual({ value: 1, source: 'engine-config', line: 9 });
    // max_model_len=None was asked; the engine resolved max_seq_len=131072.
    expect(s.maxModelLen).toEqual({ value: 131072, source: 'engine-config', line: 9 });
    expect(s.dtype).toEqual({ value: 'float16', source: 'engine-config', line: 9 });
    expect(s.quantization).toEqual({ value: null, source: 'engine-config', line: 9 });
    // "chunked_prefill_enabled=True multi_step_stream_outputs=True": the comma vLLM forgot.
    expect(s.enableChunkedPrefill).toEqual({ value: true, source: 'engine-config', line: 9 });
    // The Namespace said max_num_batched_tokens=None; the engine's own line says 512.
    expect(s.maxNumBatchedTokens).toEqual({ value: 512, source: 'engine-log', line: 8 });
    // Only the server's Namespace shows these two.
    expect(s.gpuMemoryUtilization).toEqual({ value: 0.9, source: 'server-args', line: 2 });
    expect(s.maxNumSeqs).toEqual({ value: 256, source: 'server-args', line: 2 });
  });

  it('v0.20.2, V1: the banner, non-default args and the V1 engine line (Qwen3.6 35B NVFP4)', () => {
    const s = parseVllmStartupLog(fixture('log-v0.20.2-qwen3.6-35b-nvfp4.log'));
    expect(s.engine).toBe('V1');
    expect(s.version).toEqual({ value: '0.20.2', source: 'engine-config', line: 28 });
    expect(s.model).toMatchObject({ value: 'RedHatAI/Qwen3.6-35B-A3B-NVFP4', source: 'engine-config' });
    expect(s.servedModelName).toMatchObject({ value: ['Qwen3.6-35B-A3B-NVFP4'], source: 'engine-config' });
    expect(s.tensorParallelSize).toMatchObject({ value: 1, source: 'engine-config' });
    expect(s.pipelineParallelSize).toMatchObject({ value: 1, source: 'engine-config' });
    expect(s.maxModelLen).toMatchObject({ value: 262144, source: 'engine-config' });
    expect(s.dtype).toMatchObject({ value: 'bfloat16', source: 'engine-config' });
    expect(s.quantization).toMatchObject({ value: 'compressed-tensors', source: 'engine-config' });
    expect(s.enableChunkedPrefill).toMatchObject({ value: true, source: 'engine-config' });
    expect(s.maxNumBatchedTokens).toEqual({ value: 65536, source: 'engine-log', line: 19 });
    expect(s.gpuMemoryUtilization).toEqual({ value: 0.85, source: 'server-args', line: 8 });
    expect(s.maxNumSeqs).toEqual({ value: 8, source: 'server-args', line: 8 });
  });

  it('v0.8.3, V1 engine line of a data-parallel engine (Qwen2.5 7B), JSON compilation_config', () => {
    const s = parseVllmStartupLog(fixture('log-v0.8.3-v1-engine-line-qwen2.5-7b.log'));
    const path = '/mnt/tenant-home_speed/Model/Qwen/Qwen2.5-7B-Instruct';
    expect(s.engine).toBe('V1');
    expect(s.version).toEqual({ value: '0.8.3', source: 'engine-config', line: 1 });
    expect(s.model).toMatchObject({ value: path });
    expect(s.servedModelName).toMatchObject({ value: [path] });
    expect(s.tensorParallelSize).toMatchObject({ value: 1, source: 'engine-config' });
    expect(s.pipelineParallelSize).toMatchObject({ value: 1, source: 'engine-config' });
    expect(s.maxModelLen).toMatchObject({ value: 102400, source: 'engine-config' });
    expect(s.dtype).toMatchObject({ value: 'bfloat16' });
    expect(s.quantization).toMatchObject({ value: null });
    expect(s.enableChunkedPrefill).toMatchObject({ value: true, source: 'engine-config' });
    // The engine line does not print these, and this capture holds no other line.
    expect(s.gpuMemoryUtilization).toBeNull();
    expect(s.maxNumSeqs).toBeNull();
    expect(s.maxNumBatchedTokens).toBeNull();
  });

  it('the non-default args line alone (the engine line cut off) still gives what it states', () => {
    const lines = fixture('log-v0.20.2-qwen3.6-35b-nvfp4.log').split('\n').slice(0, 9).join('\n');
    const s = parseVllmStartupLog(lines);
    expect(s.engine).toBeNull();
    expect(s.engineStarts).toBe(0);
    expect(s.version).toEqual({ value: '0.20.2', source: 'server-args', line: 4 });
    expect(s.model).toMatchObject({ value: 'RedHatAI/Qwen3.6-35B-A3B-NVFP4', source: 'server-args' });
    expect(s.servedModelName).toMatchObject({ value: ['Qwen3.6-35B-A3B-NVFP4'], source: 'server-args' });
    expect(s.maxModelLen).toMatchObject({ value: 262144, source: 'server-args' });
    expect(s.quantization).toMatchObject({ value: 'compressed-tensors', source: 'server-args' });
    expect(s.enableChunkedPrefill).toMatchObject({ value: true, source: 'server-args' });
    // Not among the non-default args: unknown, not the default.
    expect(s.tensorParallelSize).toBeNull();
    expect(s.pipelineParallelSize).toBeNull();
    expect(s.dtype).toBeNull();
  });
});

describe('parseVllmStartupLog, edge cases', () => {
  it('reads the API server version line and a short non-default args dict', () => {
    const log = [
      '(APIServer pid=445) INFO 11-12 11:11:32 [api_server.py:1876] vLLM API server version 0.11.1rc2.dev141+g38f225c2a',
      "(APIServer pid=445) INFO 11-12 11:11:32 [utils.py:243] non-default args: {'model_tag': 'openai/gpt-oss-20b', 'model': 'openai/gpt-oss-20b', 'enforce_eager': True, 'distributed_executor_backend': 'ray', 'tensor_parallel_size': 2}",
    ].join('\n');
    const s = parseVllmStartupLog(log);
    expect(s.version).toEqual({ value: '0.11.1rc2.dev141+g38f225c2a', source: 'server-args', line: 1 });
    expect(s.tensorParallelSize).toEqual({ value: 2, source: 'server-args', line: 2 });
    expect(s.model).toMatchObject({ value: 'openai/gpt-oss-20b' });
  });

  it('takes the served model\'s max model len, not a draft model\'s printed after it', () => {
    const log = [
      "INFO [utils.py:233] non-default args: {'model': 'm', 'speculative_config': {'method': 'eagle3', 'model': 'd'}}",
      'INFO [model.py:1680] Using max model len 32768',
      'INFO [model.py:1680] Using max model len 2048',
    ].join('\n');
    expect(parseVllmStartupLog(log).maxModelLen).toEqual({ value: 32768, source: 'engine-log', line: 2 });
  });

  it('the engine line outranks the server args, whatever their order', () => {
    const log = [
      "INFO non-default args: {'tensor_parallel_size': 2, 'max_model_len': 4096}",
      "INFO Initializing a V1 LLM engine (v0.9.1) with config: model='m', tensor_parallel_size=1, pipeline_parallel_size=1, max_seq_len=2048, dtype=torch.float16, quantization=None",
    ].join('\n');
    const s = parseVllmStartupLog(log);
    expect(s.tensorParallelSize).toEqual({ value: 1, source: 'engine-config', line: 2 });
    expect(s.maxModelLen).toEqual({ value: 2048, source: 'engine-config', line: 2 });
    // A server-args line printed after the engine's (a second server on a dead engine, or a
    // line echoed into the log) does not override what the engine reported.
    const reversed = parseVllmStartupLog(log.split('\n').reverse().join('\n'));
    expect(reversed.tensorParallelSize).toEqual({ value: 1, source: 'engine-config', line: 1 });
    expect(reversed.maxModelLen).toEqual({ value: 2048, source: 'engine-config', line: 1 });
  });

  it('after a restart the last engine line is the one in force', () => {
    const one = "INFO Initializing an LLM engine (v0.6.3) with config: model='a', tensor_parallel_size=1, seed=0)";
    const two = "INFO Initializing an LLM engine (v0.6.3) with config: model='a', tensor_parallel_size=2, seed=0)";
    const s = parseVllmStartupLog(`${one}\n${two}\n`);
    expect(s.engineStarts).toBe(2);
    expect(s.tensorParallelSize).toEqual({ value: 2, source: 'engine-config', line: 2 });
  });

  it('an old engine line without a version still counts as V0', () => {
    const s = parseVllmStartupLog(
      "INFO 04-28 03:36:06 llm_engine.py:72] Initializing an LLM engine with config: model='/m', tokenizer='/m', tokenizer_mode=auto, dtype=torch.bfloat16, max_seq_len=4096, tensor_parallel_size=1, quantization=None, seed=0)",
    );
    expect(s.engine).toBe('V0');
    expect(s.version).toBeNull();
    expect(s.maxModelLen).toMatchObject({ value: 4096 });
    expect(s.dtype).toMatchObject({ value: 'bfloat16' });
  });

  it('a truncated non-default args dict is an error, not a partial reading', () => {
    expect(code(() => parseVllmStartupLog("INFO non-default args: {'model': 'm', 'tensor_parallel_size': 2"))).toBe('VLLM_LOG_INVALID');
    expect(code(() => parseVllmStartupLog("INFO non-default args: {'model': 'm', 'served_model_name': ['x'"))).toBe('VLLM_LOG_INVALID');
  });

  it('a cut engine line is an error', () => {
    expect(code(() => parseVllmStartupLog("INFO Initializing a V1 LLM engine (v0.9.1) with config: model='m', decoding_config=DecodingConfig(backend='x'"))).toBe(
      'VLLM_LOG_INVALID',
    );
  });

  it('values that cannot be settings are refused', () => {
    expect(code(() => parseVllmStartupLog("INFO non-default args: {'tensor_parallel_size': 0}"))).toBe('VLLM_LOG_INVALID');
    expect(code(() => parseVllmStartupLog("INFO non-default args: {'gpu_memory_utilization': 1.5}"))).toBe('VLLM_LOG_INVALID');
    expect(code(() => parseVllmStartupLog('INFO non-default args: [1, 2]'))).toBe('VLLM_LOG_INVALID');
  });

  it('an empty or unrelated log gives nothing, all null', () => {
    for (const text of ['', 'hello\nworld\n']) {
      const s = parseVllmStartupLog(text);
      expect(s.engineStarts).toBe(0);
      expect(s.version).toBeNull();
      expect(s.tensorParallelSize).toBeNull();
      expect(s.gpuMemoryUtilization).toBeNull();
    }
  });
});

describe('parsePythonLiteral', () => {
  it('reads dicts, lists, tuples, numbers, True/False/None', () => {
    expect(parsePythonLiteral("{'a': 1, 'b': -2.5e-3, 'c': [True, False, None], 'd': (1, 2), 'e': (3,), 'f': (), 'g': {}}")).toEqual({
      a: 1,
      b: -0.0025,
      c: [true, false, null],
      d: [1, 2],
      e: [3],
      f: [],
      g: {},
    });
    expect(parsePythonLiteral('[1, 2,]')).toEqual([1, 2]);
    expect(parsePythonLiteral("{'x': {'y': [{'z': 'w'}]}}")).toEqual({ x: { y: [{ z: 'w' }] } });
    expect(parsePythonLiteral('[inf, -inf]')).toEqual([Infinity, -Infinity]);
    expect(parsePythonLiteral("{'a', 'b',}")).toEqual(['a', 'b']);
  });

  it('reads both quote kinds and escapes', () => {
    expect(parsePythonLiteral(`"it's"`)).toBe("it's");
    expect(parsePythonLiteral(`'say "hi"'`)).toBe('say "hi"');
    expect(parsePythonLiteral(`'a\\'b'`)).toBe("a'b");
    expect(parsePythonLiteral(`'tab\\tnl\\nback\\\\'`)).toBe('tab\tnl\nback\\');
    expect(parsePythonLiteral(`'\\x41\\u00e9\\U0001F600'`)).toBe('Aé😀');
    expect(parsePythonLiteral(`'\\101'`)).toBe('A');
    expect(parsePythonLiteral(`'a,b}'`)).toBe('a,b}');
    expect(parsePythonLiteral(`'C:\\\\models\\\\x'`)).toBe('C:\\models\\x');
  });

  it('keeps non-literal reprs as written', () => {
    const v = parsePythonLiteral("{'mode': <CompilationMode.VLLM_COMPILE: 3>, 'cfg': KernelConfig(a=['x'], b=True), 'e': LoadFormat.AUTO}") as Record<string, unknown>;
    expect(v['mode']).toEqual(new PyRepr('<CompilationMode.VLLM_COMPILE: 3>'));
    expect(v['cfg']).toEqual(new PyRepr("KernelConfig(a=['x'], b=True)"));
    expect(v['e']).toEqual(new PyRepr('LoadFormat.AUTO'));
  });

  it('refuses truncated or malformed text', () => {
    for (const bad of ["{'a': 1", "{'a' 1}", "'open", '[1, 2', "{'a': 1,, 'b': 2}", '1 2', "{'a': 1, 'a': 2}", '<Enum.X: 3', "'bad \\x4'"]) {
      expect(code(() => parsePythonLiteral(bad))).toBe('VLLM_LOG_INVALID');
    }
  });
});

describe('splitKeyValues', () => {
  it('balances brackets and quotes, keeps unquoted top-level text as written', () => {
    expect(splitKeyValues("a=1, b='x, y', c=Cfg(d='e, f', g=[1, 2]), h=/path/it's, i=<E.X: 1>, j=None)")).toEqual([
      ['a', '1'],
      ['b', "'x, y'"],
      ['c', "Cfg(d='e, f', g=[1, 2])"],
      ['h', "/path/it's"],
      ['i', '<E.X: 1>'],
      ['j', 'None'],
    ]);
  });

  it('splits where vLLM 0.6 forgot a comma', () => {
    expect(splitKeyValues('chunked_prefill_enabled=True multi_step_stream_outputs=True, x=1')).toEqual([
      ['chunked_prefill_enabled', 'True'],
      ['multi_step_stream_outputs', 'True'],
      ['x', '1'],
    ]);
  });

  it('refuses a cut value', () => {
    expect(code(() => splitKeyValues("a=Cfg(b='c'"))).toBe('VLLM_LOG_INVALID');
    expect(code(() => splitKeyValues("a='open"))).toBe('VLLM_LOG_INVALID');
    expect(code(() => splitKeyValues('=1'))).toBe('VLLM_LOG_INVALID');
  });
});
