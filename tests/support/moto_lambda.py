"""A local AWS (moto) with SigV4 enforced, holding one Lambda function and one IAM key.

Started by tests/lambda_moto.rs. It prints one JSON line with the endpoint, the
access key, its secret and the function name, then serves until stdin closes (the
test process ended), so it never outlives the test.

Authentication: moto lets the first INITIAL_NO_AUTH_ACTION_COUNT requests through
unsigned (this script's own setup calls) and checks every later request's SigV4
signature against the IAM keys it holds. The Lambda runs without Docker
(`use_docker: false`): moto answers invocations itself.
"""

import io
import json
import os
import socket
import sys
import zipfile

# Setup below makes exactly this many calls; every call after them must be signed.
SETUP_CALLS = 7
os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = str(SETUP_CALLS)
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

import boto3  # noqa: E402
import requests  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402

REGION = "us-east-1"
FUNCTION = "edgeway-jobs"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    # Lambda without Docker; the moto-api does not count as an AWS action.
    requests.post(f"{endpoint}/moto-api/config", json={"lambda": {"use_docker": False}}, timeout=10)

    anon = dict(endpoint_url=endpoint, region_name=REGION,
                aws_access_key_id="setup", aws_secret_access_key="setup")
    iam = boto3.client("iam", **anon)
    lam = boto3.client("lambda", **anon)
    iam.create_user(UserName="edgeway")  # 1
    iam.put_user_policy(  # 2
        UserName="edgeway", PolicyName="invoke",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "lambda:*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="edgeway")["AccessKey"]  # 3
    role = iam.create_role(  # 4
        RoleName="edgeway-lambda",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
             "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("bootstrap", "#!/bin/sh\n")
    lam.create_function(  # 5
        FunctionName=FUNCTION, Runtime="provided.al2023", Role=role,
        Handler="bootstrap", Code={"ZipFile": code.getvalue()})
    lam.get_function(FunctionName=FUNCTION)  # 6
    iam.get_user(UserName="edgeway")  # 7: the last free call

    print(json.dumps({
        "endpoint": endpoint,
        "region": REGION,
        "access_key_id": key["AccessKeyId"],
        "secret_access_key": key["SecretAccessKey"],
        "function": FUNCTION,
    }), flush=True)
    # Serve until the test process closes our stdin (it ended, however it ended).
    try:
        sys.stdin.read()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
