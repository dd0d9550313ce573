use std::process::ExitCode;

fn main() -> ExitCode {
    introspectd::cli::main()
}
