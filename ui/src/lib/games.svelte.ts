// The game the window shows (remembered by the engine across restarts) and the list for the
// switcher. Pages read `games.current` and reload when it changes.
import { backend, type BackendError } from './backend';
import type { AppInfo } from './bindings/AppInfo';
import type { Game } from './bindings/Game';

class Games {
  info = $state<AppInfo | null>(null);
  list = $state<Game[]>([]);
  current = $state<Game | null>(null);
  error = $state<BackendError | null>(null);

  async load() {
    try {
      this.info = await backend.appInfo();
      this.current = this.info.current_game;
      this.list = await backend.listGames();
    } catch (e) {
      this.error = e as BackendError;
    }
  }

  async switchTo(gameId: number) {
    this.current = await backend.switchGame(gameId);
  }

  async create(name: string, defaultCountry = ''): Promise<Game> {
    const game = await backend.createGame(name, defaultCountry);
    this.list = await backend.listGames();
    await this.switchTo(game.id);
    return game;
  }

  async rename(gameId: number, name: string) {
    const game = await backend.renameGame(gameId, name);
    this.list = await backend.listGames();
    if (this.current?.id === gameId) this.current = game;
  }

  /** Saves the game form: its name and default country for phone numbers ('' for none). */
  async update(gameId: number, name: string, defaultCountry: string) {
    const game = await backend.updateGame(gameId, name, defaultCountry);
    this.list = await backend.listGames();
    if (this.current?.id === gameId) this.current = game;
  }

  async remove(gameId: number) {
    await backend.deleteGame(gameId);
    await this.load();
  }
}

export const games = new Games();
