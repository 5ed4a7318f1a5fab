"""Peak resident memory of the current process, for the benchmarks' child processes."""


def peak_gib() -> float:
    """VmHWM in GiB: this process image's high-water mark.

    getrusage's ru_maxrss would also count the parent's resident pages inherited through
    fork (Linux keeps that high-water mark across exec), so a child started from a large
    parent would report the parent's memory.
    """
    with open("/proc/self/status") as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    return kb / 2**20
