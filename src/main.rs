use std::process::ExitCode;

fn main() -> ExitCode {
    introspectd::memory::return_large_blocks();
    introspectd::cli::main()
}
