use std::process::ExitCode;

fn main() -> ExitCode {
    introspectd::allocator::return_large_blocks();
    introspectd::cli::main()
}
