# Copyright (c) 2026 robust-medical-bundles contributors
# Licensed under the Apache License, Version 2.0 (see LICENSE).
"""Command line of the DICOM node (:class:`monai_ext.serve.node.DicomNode`).

Example (two bundles, routed by Modality; the demo overlay and its small network for the classification bundle)::

    python -m monai_ext.serve.dicom_node \\
        --bundle bundles/cxr_nvum_classification:CR,DX --bundle bundles/covid_ct_mombs_segmentation:CT \\
        --config cxr_nvum_classification=configs/demo.json \\
        --override cxr_nvum_classification:network_def=%small_network_def \\
        --ae-title MONAI_NODE --port 11112 --forward 127.0.0.1:11113:PACS --spool /var/spool/monai_node \\
        --series-timeout 10 --max-queued 8 --failure-sr --log-file node.log

SIGTERM or SIGINT stops listening, finishes the series being processed (inference and sending), and exits 0; a
second signal exits at once (the interrupted series is processed again at the next start).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence

from monai_ext.serve.routing import parse_forward, parse_routes
from monai_ext.serve.spool import Spool

__all__ = ["build_parser", "main"]

logger = logging.getLogger("monai_ext.serve")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m monai_ext.serve.dicom_node",
        description="DICOM Storage SCP that runs MONAI bundles on received series and C-STOREs the results.",
    )
    p.add_argument("--bundle", action="append", default=[], metavar="DIR[:MOD,...]", required=True,
                   help="a bundle folder, optionally with the Modality values it accepts (repeatable; first match "
                        "wins; without modalities it accepts every modality)")  # fmt: skip
    p.add_argument("--config", action="append", default=[], metavar="NAME=FILE",
                   help="a config merged after the bundle NAME's configs/inference.json (repeatable)")  # fmt: skip
    p.add_argument("--override", action="append", default=[], metavar="NAME:ID=VALUE",
                   help="a config override of bundle NAME, VALUE read as JSON when it parses (repeatable)")  # fmt: skip
    p.add_argument("--ae-title", default="MONAI_NODE", help="this node's AE title (default MONAI_NODE)")
    p.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")
    p.add_argument("--port", type=int, default=11112, help="port to listen on (default 11112; 0: a free port)")
    p.add_argument("--forward", required=True, metavar="HOST:PORT:AET", help="the Storage SCP receiving the results")
    p.add_argument("--spool", default="dicom_node_spool", help="spool folder (default ./dicom_node_spool)")
    p.add_argument("--series-timeout", type=float, default=10.0,
                   help="seconds without an instance after which a series is complete (default 10)")  # fmt: skip
    p.add_argument("--max-queued", type=int, default=8,
                   help="series waiting (receiving or queued) before new series get 0xA700 (default 8)")  # fmt: skip
    p.add_argument("--max-attempts", type=int, default=2,
                   help="inference attempts of a series cut off by a crash before it fails (default 2)")  # fmt: skip
    p.add_argument("--failure-sr", action="store_true", help="send a failure SR for each failed series")
    p.add_argument("--send-retries", type=int, default=3, help="further tries of a failed send (default 3)")
    p.add_argument("--log-file", help="also log to this file")
    p.add_argument("--log-level", default="INFO", help="default INFO")
    return p


def _configure_logging(level: str, log_file: str | None) -> None:
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    logger.setLevel(level.upper())
    logger.propagate = False
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        handlers.append(logging.FileHandler(log_file, encoding="utf-8"))
    for h in handlers:
        h.setFormatter(fmt)
        logger.addHandler(h)
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the node until SIGTERM/SIGINT; returns the exit status (2 for bad arguments)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        routes = parse_routes(args.bundle, args.config, args.override)
        destination = parse_forward(args.forward)
        spool = Spool(args.spool, args.series_timeout, args.max_queued, args.max_attempts)
    except (ValueError, FileNotFoundError) as e:
        parser.error(str(e))
    if len(args.ae_title) > 16:
        parser.error(f"--ae-title {args.ae_title!r} is longer than 16 characters.")
    _configure_logging(args.log_level, args.log_file)

    from monai_ext.serve.node import DicomNode  # imports torch and MONAI: after the arguments are checked

    node = DicomNode(routes, destination, spool, args.ae_title, args.host, args.port, args.failure_sr,
                     args.send_retries)  # fmt: skip
    stop = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        if stop.is_set():
            logger.warning(f"second {signal.Signals(signum).name}: exiting now; series {node.current} is processed "
                           "again at the next start")  # fmt: skip
            os._exit(1)
        logger.info(f"{signal.Signals(signum).name} received")
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    node.start()
    print(f"READY {node.port}", flush=True)  # for scripts and tests: the port, once the spool is recovered
    while not stop.wait(0.5):
        pass
    node.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
