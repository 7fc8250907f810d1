"""Sample frames at planned times with PyAV: one seek per cluster of times, skip what is not needed.

How it stays fast and exact:

* Times closer together than ``SEEK_GAP_S`` form one cluster, reached by one seek to the keyframe
  before it and decoded straight through (a dense window is one seek per window). Inside a
  cluster, once two keyframes have shown how long a GOP is, a gap to the next time longer than
  that GOP (plus a second) is crossed by seeking instead of decoding: a sparse sweep (the fast
  pass) decodes at most about one GOP per time, never the whole video.
* Packets wait ``LOOKAHEAD`` places in decode order, long enough to learn the display-order
  neighbours of each one. A packet whose frame is the nearest to no planned time is decoded with
  ``skip_frame=NONREF``: reference frames still decode (later frames need them), the others are
  dropped by the decoder without being reconstructed. Unknown neighbours count as far away, so the
  rule can only decode too much, never skip a frame that is needed; the frames chosen are exactly
  those a full decode would choose.
* Only chosen frames are converted, by swscale (area filter, ``threads`` threads, not swscale's
  every-CPU default), straight to the output size in RGB.

A damaged stream yields what decodes: read errors, decode errors, needed frames that never came out,
and planned times past the last frame are reported as ``problems`` (the window becomes partial).
"""

from __future__ import annotations

import bisect
import time
from collections import deque
from typing import Any, BinaryIO, Sequence

import numpy as np

from vidlake.platform.media.frames import FrameBatch, output_size, quarter_turns, upright

__all__ = ["LOOKAHEAD", "SEEK_GAP_S", "TIE_S", "read_pyav"]

SEEK_GAP_S = 10.0  # planned times further apart than this are reached by seeking, not by decoding through
LOOKAHEAD = 8  # packets held back (decode order) before deciding whether a frame is needed
TIE_S = 1e-6  # frames this close to equally near a planned time tie; the earlier one wins
_RESEEK_BACK_S = (1.0, 5.0, 30.0)  # when a seek lands after the first planned time, step back this much


class _Reseek(Exception):
    """The seek landed after the cluster's first planned time: seek again, earlier."""


def read_pyav(
    source: str | BinaryIO,
    times_s: Sequence[float],
    size: int,
    resize: str = "square",
    *,
    threads: int = 1,
    fast_deblock: bool = False,
    timeout_s: float = 600.0,
) -> FrameBatch:
    """Frames nearest ``times_s`` (seconds from the stream's first frame, sorted) from ``source``.

    Raises (PyAV's ``FFmpegError``, ``ValueError``) when the file cannot be opened or holds no
    video stream; any later trouble ends up in ``FrameBatch.problems``.
    """
    import av

    with av.open(source, metadata_errors="ignore") as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "FRAME" if threads > 1 else "NONE"
        stream.codec_context.thread_count = threads
        if fast_deblock:
            stream.codec_context.options = {"skip_loop_filter": "nokey"}
        reader = _Reader(container, stream, times_s, size, resize, time.monotonic() + timeout_s, threads)
        return reader.run()


class _Reader:
    def __init__(
        self, container: Any, stream: Any, times_s: Sequence[float], size: int, resize: str, deadline: float,
        threads: int = 1,
    ):
        from av.video.reformatter import VideoReformatter

        self.container, self.stream, self.cc = container, stream, stream.codec_context
        self.tb = stream.time_base
        self.origin = stream.start_time if stream.start_time is not None else 0
        self.times = [float(t) for t in times_s]
        self.targets = [self.origin + t / float(self.tb) for t in self.times]
        self.tie = 2 * TIE_S / float(self.tb)  # 2t vs a + b: closer than this counts as a tie (earlier wins)
        self.second = 1 / float(self.tb)  # one second in pts units
        self.size, self.resize, self.deadline, self.threads = size, resize, deadline, max(1, threads)
        self.reformatter = VideoReformatter()
        self.buffer: np.ndarray | None = None
        self.geometry: tuple[int, int, int] | None = None  # width, height, quarter turns
        self.chosen: list[int] = []  # pts of kept frames, increasing
        self.assigned: list[int] = []  # pts of the frame taken for each planned time, in order
        self.problems: list[str] = []
        self.decode_errors: list[str] = []
        self.needed: set[int] = set()
        self.out_pts: set[int] = set()
        self.corrupt = 0
        self.skip_mode = "DEFAULT"
        self.fresh = True  # nothing read yet: the demuxer stands at the start of the file
        self.gop = 0  # longest keyframe interval seen so far (pts units); 0 until two keyframes are seen

    # -- driving ---------------------------------------------------------------------------------
    def run(self) -> FrameBatch:
        for lo, hi in self._clusters():
            if not self._cluster(lo, hi):
                break
        self._report()
        n = len(self.chosen)
        frames = self.buffer[:n] if self.buffer is not None else np.zeros((0, 0, 0, 3), np.uint8)
        if self.buffer is not None and n < len(self.buffer):
            frames = frames.copy()
        return FrameBatch(frames, [self._seconds(p) for p in self.chosen], self.problems)

    def _clusters(self) -> list[tuple[int, int]]:
        out, lo = [], 0
        for i in range(1, len(self.times) + 1):
            if i == len(self.times) or self.times[i] - self.times[i - 1] > SEEK_GAP_S:
                out.append((lo, i))
                lo = i
        return out

    def _cluster(self, lo: int, hi: int) -> bool:
        """Decode the frames for targets[lo:hi]; False when the window must stop (timeout).

        Each segment starts with a seek; a segment ends early (and the next one seeks) when the
        next planned time lies further ahead than the longest keyframe interval seen so far.
        """
        while lo < hi:
            if not self._seek_and_decode(lo, hi):
                return False
            lo = self.j
        return True

    def _seek_and_decode(self, lo: int, hi: int) -> bool:
        """Seek to the keyframe before targets[lo] and decode on from there.

        When the decoded stream starts after that target (seeks index by dts; MPEG-TS seeks are
        imprecise) it seeks again further back, at last to the very start. Times within a second
        of a fresh file's start are read from the start without seeking.
        """
        attempts: list[int | None] = []
        if self.fresh and self.times[lo] <= _RESEEK_BACK_S[0]:
            attempts.append(None)
        else:
            for back in (0.0, *_RESEEK_BACK_S):
                start = self.targets[lo] - back / float(self.tb)
                if start <= self.origin:
                    break
                attempts.append(int(start))
            attempts.append(min(0, self.origin))
        self.fresh = False
        for i, start in enumerate(attempts):
            if start is not None:
                try:
                    self.container.seek(start, stream=self.stream, backward=True, any_frame=False)
                except Exception:  # noqa: BLE001 - an unseekable stream is read on from where it is
                    pass
            try:
                return self._segment(lo, hi, accept_late=i == len(attempts) - 1)
            except _Reseek:
                continue
        return True

    def _segment(self, lo: int, hi: int, accept_late: bool) -> bool:
        import av

        self.j, self.hi, self.prev, self.first, self.accept_late = lo, hi, None, None, accept_late
        pending: deque = deque()
        seen: list[int] = []
        last_key = None
        eof, jumped = True, False
        try:
            for packet in self.container.demux(self.stream):
                if time.monotonic() > self.deadline:
                    self.problems.append(f"timed out near t={self._seconds(seen[-1] if seen else None):.3f}s")
                    return False
                if packet.size == 0:
                    continue
                pending.append(packet)
                if packet.pts is not None:
                    bisect.insort(seen, packet.pts)
                    if packet.is_keyframe:
                        if last_key is not None and packet.pts > last_key:
                            self.gop = max(self.gop, packet.pts - last_key)
                        last_key = packet.pts
                while len(pending) > LOOKAHEAD and self.j < hi:
                    self._release(pending.popleft(), seen)
                if self.j >= hi:
                    eof = False
                    break
                if self.j > lo and self.gop and self.targets[self.j] - seen[-1] > self.gop + self.second:
                    eof, jumped = False, True  # seeking ahead costs less than decoding through
                    break
        except av.error.FFmpegError as exc:
            self.problems.append(f"read error after t={self._seconds(seen[-1] if seen else None):.3f}s: "
                                 f"{exc.strerror or exc}")
        while eof and pending and self.j < hi:
            self._release(pending.popleft(), seen)
        if eof and self.j < hi:
            self._decode(None)
        if self.prev is None and not self.accept_late:
            raise _Reseek()  # nothing decoded from this seek point (TS seeks can land at the end)
        self._close_segment(lo, self.j if jumped else hi)
        return True

    # -- decoding ----------------------------------------------------------------------------------
    def _release(self, packet: Any, seen: list[int]) -> None:
        p = packet.pts
        need = True
        if p is not None:
            k = bisect.bisect_left(seen, p)
            kk = bisect.bisect_right(seen, p)
            lo2 = seen[k - 1] + p + self.tie if k > 0 else float("-inf")
            hi2 = p + seen[kk] + self.tie if kk < len(seen) else float("inf")
            i = bisect.bisect_right(self.targets, lo2 / 2, self.j, self.hi)
            need = i < self.hi and 2 * self.targets[i] <= hi2 and 2 * self.targets[i] > lo2
            if need:
                self.needed.add(p)
        mode = "DEFAULT" if need else "NONREF"
        if mode != self.skip_mode:
            self.cc.skip_frame = self.skip_mode = mode
        self._decode(packet)

    def _decode(self, packet: Any) -> None:
        import av

        try:
            frames = self.cc.decode(packet)
        except av.error.FFmpegError as exc:
            where = self._seconds(packet.pts) if packet is not None and packet.pts is not None else None
            self.decode_errors.append(f"{exc.strerror or exc}" + (f" at t={where:.3f}s" if where is not None else ""))
            return
        for frame in frames:
            self._push(frame)

    def _push(self, frame: Any) -> None:
        q = frame.pts
        if q is None:
            return
        self.out_pts.add(q)
        if self.prev is None:
            if self.j < self.hi and q > self.targets[self.j] and not self.accept_late:
                raise _Reseek()
            self.first = q
        elif q <= self.prev.pts:
            return  # out of display order: never chosen
        while self.j < self.hi and self.targets[self.j] <= q:
            a = self.prev
            self._take(a if a is not None and 2 * self.targets[self.j] <= a.pts + q + self.tie else frame)
            self.j += 1
        self.prev = frame

    def _close_segment(self, lo: int, hi: int) -> None:
        """Planned times in [lo, hi) the stream did not reach take its last frame; report far ones."""
        gaps = [b - a for a, b in zip(self.times[lo:hi], self.times[lo + 1 : hi])]
        tol = max(gaps, default=0.0) + 1.0
        if self.prev is None:
            if hi > lo:
                self.problems.append(f"no frame decodes for t={self.times[lo]:.3f}..{self.times[hi - 1]:.3f}s")
            self.j = max(self.j, hi)
            return
        last = self._seconds(self.prev.pts)
        if self.j < hi and self.times[hi - 1] > last + tol:
            self.problems.append(f"the stream ends at t={last:.3f}s, before the planned t={self.times[hi - 1]:.3f}s")
        while self.j < hi:
            self._take(self.prev)
            self.j += 1
        first = self._seconds(self.first)
        if self.times[lo] < first - tol:
            self.problems.append(
                f"the first decodable frame is at t={first:.3f}s, after the planned t={self.times[lo]:.3f}s"
            )

    def _take(self, frame: Any) -> None:
        self.assigned.append(frame.pts)
        if self.chosen and self.chosen[-1] >= frame.pts:
            return
        if self.geometry is None:
            turns = quarter_turns(getattr(frame, "rotation", 0))
            self.geometry = (*output_size(frame.width, frame.height, self.size, self.resize), turns)
        width, height, turns = self.geometry
        image = self.reformatter.reformat(  # swscale's own default (0, auto) would use every CPU
            frame, width=width, height=height, format="rgb24", interpolation="AREA", threads=self.threads
        ).to_ndarray()
        image = upright(image, turns)
        if self.buffer is None:
            self.buffer = np.empty((len(self.targets), *image.shape), np.uint8)
        self.buffer[len(self.chosen)] = image
        self.chosen.append(frame.pts)
        self.corrupt += bool(getattr(frame, "is_corrupt", False))

    # -- reporting ---------------------------------------------------------------------------------
    def _report(self) -> None:
        if self.decode_errors:
            self.problems.append(
                f"{len(self.decode_errors)} packet(s) failed to decode (first: {self.decode_errors[0]})"
            )
        # a needed frame that never came out matters when it is nearer a planned time than the frame taken
        lost = sorted(
            p for p in self.needed - self.out_pts
            if any(abs(t - p) < abs(t - a) for t, a in zip(self.targets, self.assigned))
        )
        if lost:
            self.problems.append(
                f"{len(lost)} needed frame(s) did not decode, first at t={self._seconds(lost[0]):.3f}s"
            )
        if self.corrupt:
            self.problems.append(f"{self.corrupt} sampled frame(s) decoded with concealed errors")

    def _seconds(self, pts: int | None) -> float:
        return 0.0 if pts is None else round(float((pts - self.origin) * self.tb), 6)
