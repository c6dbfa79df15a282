//! `lambda-jobs` on the Lambda runtime. Locally, `make dev` runs it under
//! `cargo lambda watch`, which serves the Invoke API the gateway calls.

use edgeway_protocol::jobs::{JobInvocation, JobOutcome};
use lambda_runtime::{service_fn, Error, LambdaEvent};

async fn handler(event: LambdaEvent<JobInvocation>) -> Result<JobOutcome, Error> {
    let invocation = event.payload;
    // The work and the callback block (image decoding, a blocking HTTP client).
    let outcome = tokio::task::spawn_blocking(move || lambda_jobs::handle(&invocation)).await??;
    Ok(outcome)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handler)).await
}
