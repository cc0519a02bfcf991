"""The llama.cpp side of scripts/bench-llm.sh: the same GGUF file and the same prompt token ids
as `encore llm bench` wrote, through llama-cpp-python on the same cores. Prints and writes
prompt-processing and greedy-generation tokens per second, the greedy ids and the top logits.

    python llamacpp_bench.py MODEL.gguf ENCORE_JSON OUT_JSON THREADS REPEAT
"""
import json
import sys
import time

import numpy as np
from llama_cpp import Llama


def last_logits(llm):
    # Without logits_all, llama-cpp-python 0.3.16 keeps only the last position's logits in the
    # context (its `scores` stay zero): read them there.
    ptr = llm._ctx.get_logits_ith(-1)
    return np.ctypeslib.as_array(ptr, shape=(llm.n_vocab(),)).astype(np.float32)


def main():
    model, encore_json, out_path, threads, repeat = sys.argv[1:6]
    threads, repeat = int(threads), int(repeat)
    e = json.load(open(encore_json))
    prompt, n_gen = e["prompt"], e["gen_tokens"]
    llm = Llama(model_path=model, n_ctx=len(prompt) + n_gen + 8, n_threads=threads,
                n_threads_batch=threads, n_batch=512, logits_all=False, verbose=False)
    best_pp, best_tg, greedy, top = float("inf"), float("inf"), [], []
    for rep in range(repeat + 1):
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(prompt)
        pp = time.perf_counter() - t0
        logits = last_logits(llm)
        if rep == 0:
            idx = np.argsort(-logits)[:10]
            top = [[int(i), float(logits[i])] for i in idx]
        out = []
        t1 = time.perf_counter()
        for _ in range(n_gen):
            t = int(np.argmax(logits))
            out.append(t)
            llm.eval([t])
            logits = last_logits(llm)
        tg = time.perf_counter() - t1
        if rep > 0:
            best_pp, best_tg = min(best_pp, pp), min(best_tg, tg)
        greedy = out
    r = {
        "engine": "llama.cpp (llama-cpp-python)",
        "prompt_tokens": len(prompt),
        "prompt_tokens_per_s": len(prompt) / best_pp,
        "gen_tokens": len(greedy),
        "gen_tokens_per_s": len(greedy) / best_tg,
        "greedy": greedy,
        "top_logits": top,
    }
    json.dump(r, open(out_path, "w"))


if __name__ == "__main__":
    main()
