"""Development tools shared by the tests and the benchmarks (a throwaway Redis, the fake
Discord); production code never imports them."""
