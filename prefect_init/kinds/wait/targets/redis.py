"""``redis: URL``: ready when PING is answered with PONG (password, database and TLS from the URL:
``redis://:password@host:6379/0``, ``rediss://...``). LOADING and authentication errors count as not ready.
"""

from __future__ import annotations

from prefect_init.kinds.wait.loop import NotReady
from prefect_init.kinds.wait.targets import Checker, SimpleChecker, TargetBase
from prefect_init.runtime.context import RunContext


class Target(TargetBase):
    key = "redis"
    redis: str

    def label(self) -> str:
        return self.redis

    def checker(self, ctx: RunContext) -> Checker:
        def check(timeout: float) -> None:
            import redis as redislib

            client = redislib.Redis.from_url(self.redis, socket_connect_timeout=timeout, socket_timeout=timeout)
            try:
                if client.ping() is not True:
                    raise NotReady("PING not answered with PONG")
            except redislib.exceptions.BusyLoadingError:
                raise NotReady("LOADING: Redis is loading its dataset") from None
            except redislib.exceptions.AuthenticationError as exc:
                raise NotReady(f"authentication failed ({exc})") from None
            except redislib.exceptions.ResponseError as exc:
                raise NotReady(str(exc).splitlines()[0][:200]) from None
            except redislib.exceptions.TimeoutError:
                raise NotReady("timed out") from None
            except redislib.exceptions.ConnectionError as exc:
                text = str(exc)
                raise NotReady("connection refused" if "refused" in text.lower() else text[:200]) from None
            finally:
                client.close()

        return SimpleChecker(check)
