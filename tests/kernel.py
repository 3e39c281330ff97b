"""A real Jupyter kernel driven like JupyterLab drives it (each execute request carries the cell's id)."""

from __future__ import annotations

import os

from jupyter_client.manager import KernelManager


class Kernel:
    def __init__(self, cwd: str | None = None, env: dict[str, str] | None = None):
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(cwd=cwd, env=dict(os.environ, **(env or {})))
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def run(self, code: str, cell_id: str | None = None, timeout: float = 300) -> dict:
        """Execute ``code``; return {'status', 'outputs': [iopub msgs], 'error': ename/evalue or None}."""
        self.kc.session.metadata = {"cellId": cell_id} if cell_id else {}
        msg_id = self.kc.execute(code)
        outputs = []
        while True:
            msg = self.kc.get_iopub_msg(timeout=timeout)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
            if msg["msg_type"] in ("stream", "execute_result", "display_data", "error", "update_display_data"):
                outputs.append(msg)
        reply = self.kc.get_shell_msg(timeout=timeout)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = self.kc.get_shell_msg(timeout=timeout)
        content = reply["content"]
        error = f"{content.get('ename')}: {content.get('evalue')}" if content["status"] == "error" else None
        return {"status": content["status"], "outputs": outputs, "error": error}

    @staticmethod
    def text(result: dict) -> str:
        parts = []
        for msg in result["outputs"]:
            if msg["msg_type"] == "update_display_data":  # it replaces the output of the cell that displayed it
                continue
            c = msg["content"]
            parts.append(c.get("text") or c.get("data", {}).get("text/plain", "") or c.get("evalue", ""))
        return "\n".join(parts)

    @staticmethod
    def metadata(result: dict) -> dict:
        for msg in result["outputs"]:
            if msg["msg_type"] == "execute_result":
                return msg["content"].get("metadata", {})
        return {}

    def restart(self) -> None:
        self.km.restart_kernel(now=False)
        self.kc.wait_for_ready(timeout=60)

    def shutdown(self) -> None:
        try:
            self.kc.stop_channels()
        finally:
            if self.km.is_alive():
                self.km.shutdown_kernel(now=False)
            else:
                self.km.cleanup_resources()
