// Keep the catalogue's availability live: refresh the counts from the API while the tab is visible.
import { api } from './api.js';

const table = document.getElementById('catalogue');
const REFRESH_MS = 15000;

async function refresh() {
  if (!table || document.visibilityState !== 'visible') return;
  const query = encodeURIComponent(table.dataset.query || '');
  try {
    const { books } = await api('GET', `/api/library/books?q=${query}`);
    for (const book of books) {
      const row = table.querySelector(`tr[data-book-id="${book.id}"]`);
      if (!row) continue;
      for (const field of ['copies_available', 'copies_total', 'waiting_holds']) {
        const cell = row.querySelector(`[data-field="${field}"]`);
        if (cell) cell.textContent = String(book[field]);
      }
      const available = row.querySelector('.availability');
      available?.classList.toggle('available', book.copies_available > 0);
      available?.classList.toggle('out', book.copies_available === 0);
    }
  } catch (err) {
    console.warn('Could not refresh availability:', err);
  }
}

if (table) {
  setInterval(refresh, REFRESH_MS);
  document.addEventListener('visibilitychange', refresh);
}
