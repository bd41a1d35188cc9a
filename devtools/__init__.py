"""Development tools shared by the tests and the benchmarks (a throwaway Redis, the fake
Discord, a real llama.cpp server and a tiny model for it); production code never imports them."""
