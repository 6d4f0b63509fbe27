from hwkit.cli import main

if __name__ == "__main__":  # a guard: multiprocessing's server imports the main module
    raise SystemExit(main())
