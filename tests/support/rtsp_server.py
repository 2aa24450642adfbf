"""A loopback RTSP server for the tests and the benchmark: GStreamer's gst-rtsp-server through PyGObject.

Run with Debian's python3 (which has `gi`), not the project's virtual environment:

    /usr/bin/python3 tests/support/rtsp_server.py --port 8554 --mount cam1=../shared/data/video/car-detection.mp4

Each client gets its own pipeline from the start of the file (H.264 passed through, nothing re-encoded) at the
file's own pace; at the end of the file the stream ends, as a camera that drops does. Prints "ready" once listening.
"""

from __future__ import annotations

import argparse
import signal
import sys

import gi


def main() -> None:
    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mount", action="append", default=[], help="NAME=FILE.mp4 (H.264), repeatable")
    args = parser.parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    for spec in args.mount:
        name, path = spec.split("=", 1)
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(
            f'( filesrc location="{path}" ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )'
        )
        factory.set_shared(False)
        mounts.add_factory(f"/{name}", factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{args.port}")
    loop = GLib.MainLoop()
    signal.signal(signal.SIGTERM, lambda *_: loop.quit())
    print("ready", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
