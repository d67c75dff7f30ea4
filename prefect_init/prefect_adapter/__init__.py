"""The Prefect adapter: everything that talks to Prefect, beside the pod's own path.

- Pod side, over plain HTTP, never importing prefect: finding the API (:mod:`.discovery`), bounded REST calls
  (:mod:`.rest`), the observer that mirrors a run into the API (:mod:`.observer`, :mod:`.mirror`,
  :mod:`.mirror_reporter`), and the ``prefect_run`` wait target (:mod:`.wait_target`).
- Release side, with Prefect's own client: ``deploy``, ``trigger``, ``runs`` (:mod:`.client`, :mod:`.deploy`,
  :mod:`.trigger`, :mod:`.runs`) and the Kubernetes work pool's template (:mod:`.workpool`).

When the API is slow, gone or refusing, the mirror stops and the steps run on: the exit code is always the steps'.
"""
