# deepspeed-cpp tests: zero_to_fp32.py imports tqdm for progress bars; without Debian's
# python3-tqdm this stands in for it (the shim folder comes after the installed packages).


def tqdm(iterable, **kwargs):
    return iterable
