"""The release-time surge (``make bench``, ``python -m benchmarks.surge``): many patients,
each on an account of their own and from a loopback address of their own, book the public
numbers of one session through the gateway at the same instant; then wrk measures sold-out
answers against the gateway's bare ``/healthz`` at the same concurrency."""
