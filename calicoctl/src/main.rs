//! The `calicoctl` binary: runs [`calicoctl::run`] on the process's arguments and streams.

fn main() {
    let code = calicoctl::run(
        std::env::args_os(),
        &mut std::io::stdin().lock(),
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    std::process::exit(code);
}
