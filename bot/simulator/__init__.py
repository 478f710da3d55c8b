"""The built-in WeCom simulator: WeCom's API on loopback, a page to watch it, callbacks to the bot."""

from bot.simulator.app import Simulator, serve_simulator
from bot.simulator.state import CallbackResult, RecordedRequest, SimulatorSettings

__all__ = ["CallbackResult", "RecordedRequest", "Simulator", "SimulatorSettings", "serve_simulator"]
