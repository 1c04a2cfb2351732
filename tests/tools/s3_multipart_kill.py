#!/usr/bin/python3
"""Runs a command and SIGKILLs it in the middle of a multipart upload it makes to S3.

Usage: s3_multipart_kill.py s3://BUCKET/PREFIX TIMEOUT_S -- COMMAND [ARG...]

Starts COMMAND (its stdout and stderr are this script's), then polls ListMultipartUploads under
PREFIX (a few ms apart) while it runs. As soon as an upload shows up, sends SIGKILL to COMMAND,
then lists again: the upload still being there (neither completed nor aborted) proves the kill
landed in its middle. Prints one line saying what happened on stderr.
Exit status: 0 killed in the middle of an upload; 3 COMMAND ended (or the timeout passed) before
any upload began; 4 the upload was already gone after the kill (it finished first); 2 usage or
S3 error. Credentials and endpoint come from the environment (AWS_ENDPOINT_URL,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION), as the AWS CLI reads them; the S3 client
is the botocore that Debian's awscli package ships.
"""
import os
import signal
import subprocess
import sys
import time

from awscli.botocore.session import Session


def say(message):
    print(f"s3_multipart_kill: {message}", file=sys.stderr, flush=True)


def main():
    args = sys.argv[1:]
    if len(args) < 4 or args[2] != "--" or not args[0].startswith("s3://"):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    url, timeout, command = args[0], float(args[1]), args[3:]
    bucket, _, prefix = url[len("s3://"):].partition("/")
    client = Session().create_client(
        "s3",
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL"),
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
    )

    def uploads():
        r = client.list_multipart_uploads(Bucket=bucket, Prefix=prefix)
        return {(u["Key"], u["UploadId"]) for u in r.get("Uploads", [])}

    before = uploads()  # earlier leftovers under the prefix do not count
    child = subprocess.Popen(command)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            started = uploads() - before
            if started:
                child.kill()
                child.wait()
                key, upload_id = sorted(started)[0]
                if (key, upload_id) not in uploads():
                    say(f"killed {command[0]}, but the upload of {key} had finished first")
                    return 4
                parts = client.list_parts(Bucket=bucket, Key=key, UploadId=upload_id)
                say(f"killed {command[0]} in the middle of the multipart upload of {key} "
                    f"({len(parts.get('Parts', []))} parts uploaded)")
                return 0
            if child.poll() is not None:
                say(f"{command[0]} ended (exit {child.returncode}) before a multipart upload "
                    f"began under {url}")
                return 3
            time.sleep(0.002)
        say(f"no multipart upload began under {url} in {timeout} s")
        return 3
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # an S3 error: say it in one line
        print(f"s3_multipart_kill: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(2)
